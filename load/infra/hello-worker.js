// The bare Worker: a JSON hello with no framework, the reference point of the workerd
// figures (as load/infra/hello-server.ts is for Node). Run in miniflare by the bench.
export default {
  fetch() {
    return Response.json({ status: 'ok' });
  },
};
