/**
 * A request answered before its body is all sent. Over HTTP (workerd) the server answers
 * 413 as soon as it knows and closes with the rest of the body unread, which resets the
 * connection: a client still writing can fail with ECONNRESET or EPIPE before it reads
 * the answer (RFC 9112, 9.6 "Tear-down"). That transport failure is retried, a few
 * times; whatever answer comes is returned as it is, for the test to judge.
 */
export async function earlyAnswer(
  send: () => Response | Promise<Response>,
  attempts = 5,
): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      const code = (error as { cause?: { code?: unknown } }).cause?.code;
      if (attempt >= attempts || (code !== 'ECONNRESET' && code !== 'EPIPE')) throw error;
    }
  }
}

/** A request body of `chunk` repeated `times`, streamed (sent chunked). */
export function repeatedStream(chunk: string, times: number): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(chunk);
  return new ReadableStream({
    start(controller) {
      for (let i = 0; i < times; i++) controller.enqueue(bytes);
      controller.close();
    },
  });
}
