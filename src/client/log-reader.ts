/**
 * A logmon stand-in: makes the task's FIFOs with mkfifo (0600, root) and
 * drains them. Opened O_RDWR so the read side never sees EOF between
 * writers, as a long-lived log collector would behave.
 */
import { execFileSync } from 'node:child_process';
import { constants as C, existsSync, openSync } from 'node:fs';
import * as net from 'node:net';

export class FifoReader {
  private chunks: Buffer[] = [];
  private received = 0;
  private socket: net.Socket | null = null;
  private listeners: Array<() => void> = [];

  /** `onData` sees every chunk as it arrives (the run command streams them to the terminal). */
  constructor(readonly path: string, private readonly onData?: (chunk: Buffer) => void, private readonly collect = true) {
    if (!existsSync(path)) execFileSync('mkfifo', ['-m', '0600', path]);
    const fd = openSync(path, C.O_RDWR | C.O_NONBLOCK);
    this.socket = new net.Socket({ fd, readable: true, writable: false });
    this.socket.on('data', (b: Buffer) => {
      this.received += b.length;
      if (this.collect) this.chunks.push(b);
      this.onData?.(b);
      for (const l of this.listeners.splice(0)) l();
    });
    this.socket.on('error', () => undefined);
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }

  /** Resolve when the collected text matches, or reject with what was seen. */
  async waitFor(re: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const t = this.text();
      if (re.test(t)) return t;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re} on ${this.path}; got: ${JSON.stringify(t)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.listeners.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Wait until the FIFO has been quiet for `quietMs` (what a task wrote just before exiting). */
  async drain(quietMs = 30, maxMs = 1000): Promise<void> {
    const deadline = Date.now() + maxMs;
    let last = this.received;
    for (;;) {
      await new Promise((r) => setTimeout(r, quietMs));
      if (this.received === last || Date.now() > deadline) return;
      last = this.received;
    }
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }
}
