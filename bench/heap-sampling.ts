/**
 * What a process allocates, by function, from V8's sampling heap profiler through the
 * inspector protocol (the process runs with --inspect). Counting the objects already collected
 * (includeObjectsCollectedByMinorGC/MajorGC) makes it an allocation profile rather than a
 * live-memory one: the short-lived garbage a hot path makes, which the scavenger then pays
 * for, is what it shows. That is how a copy of a whole node list per result was found
 * (engine.ts, applyOutcomes).
 *
 * The inspector speaks WebSocket: Node 20 has a WebSocket client behind
 * --experimental-websocket (Node 22 always), so a bench using this runs under that flag.
 */

interface SamplingNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly SamplingNode[];
}

export interface SamplingHeapProfile {
  readonly head: SamplingNode;
}

/** The WebSocket client this needs (the DOM's, as Node provides it); absent without the flag on Node 20. */
interface InspectorSocket {
  send(data: string): void;
  close(): void;
  addEventListener(type: 'open' | 'error' | 'close', fn: () => void, o?: { once?: boolean }): void;
  addEventListener(type: 'message', fn: (e: { data: unknown }) => void): void;
}
type SocketConstructor = new (url: string) => InspectorSocket;
const webSocketClass = (): SocketConstructor | undefined => (globalThis as { WebSocket?: SocketConstructor }).WebSocket;

export class HeapSampler {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly ws: InspectorSocket) {
    // The coordinator exiting closes the inspector: a call waiting for it fails instead of hanging.
    ws.addEventListener('close', () => {
      for (const w of this.waiting.values()) w.reject(new Error('the inspector connection closed'));
      this.waiting.clear();
    });
    ws.addEventListener('message', (e) => {
      const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown; error?: { message: string } };
      const w = m.id === undefined ? undefined : this.waiting.get(m.id);
      if (!w || m.id === undefined) return;
      this.waiting.delete(m.id);
      if (m.error) w.reject(new Error(m.error.message));
      else w.resolve(m.result);
    });
  }

  /** Why this Node cannot connect (no WebSocket client), or null when it can. */
  static unavailable(): string | null {
    return webSocketClass() ? null : 'no WebSocket client in this Node: run the bench with `node --experimental-websocket` (Node 20)';
  }

  /** Connects to the inspector of the process listening on 127.0.0.1:`port`. */
  static async connect(port: number): Promise<HeapSampler> {
    const Socket = webSocketClass();
    if (!Socket) throw new Error(HeapSampler.unavailable() ?? 'no WebSocket client');
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
    const url = targets[0]?.webSocketDebuggerUrl;
    if (!url) throw new Error(`no inspector target on port ${port}`);
    const ws = new Socket(url);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error(`the inspector at ${url} refused the connection`)), { once: true });
    });
    return new HeapSampler(ws);
  }

  private call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (r: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Starts sampling every `intervalBytes` allocated on average, collected objects included. */
  async start(intervalBytes = 4096): Promise<void> {
    await this.call('HeapProfiler.enable');
    await this.call('HeapProfiler.startSampling', { samplingInterval: intervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }

  async stop(): Promise<SamplingHeapProfile> {
    const r = await this.call<{ profile: SamplingHeapProfile }>('HeapProfiler.stopSampling');
    return r.profile;
  }

  close(): void {
    this.ws.close();
  }
}

const frameName = (n: SamplingNode): string => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/.*\//, '')}:${n.callFrame.lineNumber + 1}`;

/**
 * Bytes allocated per function: its own (self) and with everything it called (inclusive, each
 * function counted once per stack), largest first. Pure.
 */
export function allocationsByFunction(p: SamplingHeapProfile): { total: number; self: Array<[string, number]>; inclusive: Array<[string, number]> } {
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  const walk = (n: SamplingNode, onStack: ReadonlySet<string>): number => {
    const name = frameName(n);
    self.set(name, (self.get(name) ?? 0) + n.selfSize);
    total += n.selfSize;
    const stack = onStack.has(name) ? onStack : new Set([...onStack, name]);
    let sum = n.selfSize;
    for (const c of n.children) sum += walk(c, stack);
    if (!onStack.has(name)) inclusive.set(name, (inclusive.get(name) ?? 0) + sum);
    return sum;
  };
  walk(p.head, new Set());
  const sorted = (m: Map<string, number>): Array<[string, number]> => [...m].sort((a, b) => b[1] - a[1]);
  return { total, self: sorted(self), inclusive: sorted(inclusive) };
}
