/**
 * The tasks of this plugin process by id, with the two in-between states
 * that must not be tracked as tasks: an id being started (a second
 * StartTask for it is ALREADY_EXISTS) and a task being destroyed
 * (concurrent DestroyTask calls share one cleanup).
 */
import { DriverError, notFound } from '../../shared/errors';
import type { TaskRecord, TaskSource } from './task-record';

export class TaskStore implements TaskSource {
  private readonly tasks = new Map<string, TaskRecord>();
  private readonly starting = new Set<string>();
  private readonly destroying = new Map<string, Promise<void>>();

  get size(): number {
    return this.tasks.size;
  }

  list(): TaskRecord[] {
    return [...this.tasks.values()];
  }

  get(id: string): TaskRecord | undefined {
    return this.tasks.get(id);
  }

  has(id: string): boolean {
    return this.tasks.has(id);
  }

  /** NOT_FOUND for an id this process does not track. */
  require(id: string): TaskRecord {
    const t = this.tasks.get(id);
    if (!t) throw notFound('task not found for given id');
    return t;
  }

  add(task: TaskRecord): void {
    this.tasks.set(task.config.id, task);
  }

  /** Run `start` with `id` reserved; ALREADY_EXISTS while the id is tracked or being started. */
  async reserving<T>(id: string, start: () => Promise<T>): Promise<T> {
    if (this.tasks.has(id) || this.starting.has(id)) throw new DriverError('ALREADY_EXISTS', `task with ID "${id}" already started`);
    this.starting.add(id);
    try {
      return await start();
    } finally {
      this.starting.delete(id);
    }
  }

  delete(id: string): void {
    this.tasks.delete(id);
  }

  /**
   * Run `destroy` for the task `id` once, however many callers ask while it
   * runs (they all get its outcome); nothing to do for an unknown id.
   */
  destroyOnce(id: string, destroy: (task: TaskRecord) => Promise<void>): Promise<void> {
    const pending = this.destroying.get(id);
    if (pending) return pending;
    const task = this.tasks.get(id);
    if (!task) return Promise.resolve();
    const done = destroy(task).finally(() => this.destroying.delete(id));
    this.destroying.set(id, done);
    return done;
  }
}
