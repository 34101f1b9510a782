/**
 * Numbers every stored output chunk, coordinator-wide, in the order it is taken in: the order
 * the live event stream sends output in, and the position a client resumes from (SSE
 * Last-Event-ID). A number is taken in the same tick the chunk is queued for the store, so
 * numbers and store order agree; a restarted coordinator continues after the highest stored one.
 */
import type { Database } from '../store/database.js';
import { lastOutputSeq } from '../store/execution-store.js';

export class OutputSequence {
  private constructor(private last: number) {}

  static async open(db: Database): Promise<OutputSequence> {
    return new OutputSequence(await lastOutputSeq(db));
  }

  /** For tests and tools that build a store by hand. */
  static startingAfter(last: number): OutputSequence {
    return new OutputSequence(last);
  }

  next(): number {
    return ++this.last;
  }
}
