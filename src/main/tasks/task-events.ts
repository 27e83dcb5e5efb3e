/**
 * The observers of task starts, exits and driver events (metrics, the
 * TaskEvents stream). An observer that throws is logged and never stops the
 * others or the task code that notified.
 */
import type { Logger } from '../log';
import type { TaskEventsSink } from './task-record';

export class TaskEvents {
  private readonly sinks: TaskEventsSink[];

  constructor(private readonly logger: Logger, initial: readonly TaskEventsSink[] = []) {
    this.sinks = [...initial];
  }

  observe(sink: TaskEventsSink): void {
    this.sinks.push(sink);
  }

  unobserve(sink: TaskEventsSink): void {
    const i = this.sinks.indexOf(sink);
    if (i >= 0) this.sinks.splice(i, 1);
  }

  notify(fn: (sink: TaskEventsSink) => void): void {
    for (const s of this.sinks) {
      try {
        fn(s);
      } catch (err) {
        this.logger.error('task observer failed', { error: err });
      }
    }
  }
}
