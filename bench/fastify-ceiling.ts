/**
 * Ceiling F: the same Fastify shape as the service (JSON body, schema validation,
 * 202 with an empty body) answering a POST without touching a database.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post(
  '/api/v1/oms/oms_hook_events/publish-event/',
  {
    schema: {
      body: {
        type: 'object',
        required: ['hook', 'instance'],
        properties: {
          hook: { type: 'integer' },
          instance: { type: 'object', required: ['pk', 'model'] },
        },
      },
    },
  },
  async (_request, reply) => reply.code(202).send(),
);
await app.listen({ port: Number(process.argv[2] ?? 0), host: '127.0.0.1' });
process.stdout.write(`${(app.server.address() as { port: number }).port}\n`);
