import { afterAll } from 'vitest';
import { removeTemporaryPlans } from '../../src/select/plan-folder.js';

// Plans resolved from specs live in temporary folders until closed or until the process exits; a test runner's
// workers outlive a test file, so its leftovers go when the file ends.
afterAll(() => removeTemporaryPlans());
