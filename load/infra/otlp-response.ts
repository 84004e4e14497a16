import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Answers an OTLP/HTTP export with an empty Export*ServiceResponse in the request's
 * encoding: `{}` is not protobuf, and an exporter logs every export whose response it
 * cannot read. For the stand-in collectors (the bench sink, the tests').
 */
export function answerOtlpExport(req: IncomingMessage, res: ServerResponse): void {
  const protobuf = req.headers['content-type'] === 'application/x-protobuf';
  res.writeHead(200, { 'content-type': protobuf ? 'application/x-protobuf' : 'application/json' });
  res.end(protobuf ? '' : '{}');
}
