/** Spec files and plans: queries → ordered, deduplicated candidate lists. */
export { readSpec, parseSpec, parseByteSize, specSchema, queryKind, type Spec, type QuerySpec } from './spec.js';
export {
  openPlan,
  resolvePlan,
  candidatesOf,
  type Plan,
  type PlanHeader,
  type PlannedQuery,
  type Candidate,
  type CandidateList,
} from './plan.js';
export { writePlan, readPlan, loadPlan, isPlanDir } from './plan-file.js';
