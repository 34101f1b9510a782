/** A minimal Server-Sent Events reader for the CLI (fetch + a line parser). */

export interface SseEvent {
  readonly event: string;
  readonly data: string;
  /** The event's `id:` field, when it had one (the position to resume after, as Last-Event-ID). */
  readonly id?: string;
}

/** `res`: a fetch Response or the CLI's ApiResponse (anything whose body iterates as bytes). */
export async function* readSse(res: { readonly body: unknown }): AsyncGenerator<SseEvent> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buf = '';
  let event = 'message';
  let data: string[] = [];
  let id: string | undefined;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (data.length > 0) yield { event, data: data.join('\n'), ...(id !== undefined ? { id } : {}) };
        event = 'message';
        data = [];
        id = undefined;
      } else if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      else if (line.startsWith('id:')) id = line.slice(3).replace(/^ /, '');
    }
  }
}
