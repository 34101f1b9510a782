/** The agent connection's life as an explicit state machine; illegal transitions throw. */

export type ConnectionState = 'idle' | 'connecting' | 'streaming' | 'backoff' | 'stopped';

const ALLOWED: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  idle: ['connecting', 'stopped'],
  connecting: ['streaming', 'backoff', 'stopped'],
  streaming: ['backoff', 'stopped'],
  backoff: ['connecting', 'stopped'],
  stopped: [],
};

export class ConnectionStateMachine {
  private current: ConnectionState = 'idle';
  private readonly listeners: Array<(from: ConnectionState, to: ConnectionState) => void> = [];

  get state(): ConnectionState {
    return this.current;
  }

  canMove(to: ConnectionState): boolean {
    return ALLOWED[this.current].includes(to);
  }

  move(to: ConnectionState): void {
    if (!this.canMove(to)) throw new Error(`illegal agent connection transition ${this.current} -> ${to}`);
    const from = this.current;
    this.current = to;
    for (const l of this.listeners) l(from, to);
  }

  onChange(fn: (from: ConnectionState, to: ConnectionState) => void): void {
    this.listeners.push(fn);
  }
}
