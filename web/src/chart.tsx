import type { RatePoint } from '../../src/server/wire';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Samples/s and bytes/s over time, one point a second (the server keeps the last 90). */
export function RateChart({ points, label }: { points: RatePoint[]; label: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = (): uPlot.AlignedData => [
    points.map((p) => p.t),
    points.map((p) => p.samples_per_second),
    points.map((p) => (p.bytes_per_second ?? 0) / 1024),
  ];

  useEffect(() => {
    if (!box.current) return;
    const width = Math.max(260, Math.min(640, box.current.clientWidth));
    plot.current = new uPlot(
      {
        width,
        height: 180,
        series: [
          {},
          { label: 'samples/s', stroke: '#2563eb', width: 2 },
          { label: 'KB/s', stroke: '#d97706', width: 1.5, scale: 'kb' },
        ],
        axes: [
          {},
          { label: 'samples/s', size: 50 },
          { side: 1, scale: 'kb', label: 'KB/s', size: 60, grid: { show: false } },
        ],
        legend: { live: false },
      },
      data(),
      box.current,
    );
    return () => plot.current?.destroy();
  }, []);
  useEffect(() => plot.current?.setData(data()), [points]);
  return (
    <div
      class="chart"
      ref={box}
      role="img"
      aria-label={`${label}: samples per second and kilobytes per second over the last ${points.length} seconds`}
    />
  );
}
