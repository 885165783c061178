import type {
  FastifyBaseLogger,
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
} from 'fastify';
import { AppError, toError } from '../core/errors.js';

/**
 * One error handler for the whole API: AppError bodies go out as they are; Fastify's
 * own errors become DRF's shapes (`{"field": ["message"]}` for validation, `{"detail"}`
 * for the rest); anything else is a 500 whose details stay in the log.
 */
type AjvIssue = {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
};

function messageFor(issue: AjvIssue): string {
  const p = issue.params;
  switch (issue.keyword) {
    case 'required':
      return 'This field is required.';
    case 'type': {
      const type = String(p.type);
      if (type.includes('integer')) return 'A valid integer is required.';
      if (type.includes('number')) return 'A valid number is required.';
      if (type.includes('boolean')) return 'Must be a valid boolean.';
      if (type.includes('string')) return 'Not a valid string.';
      if (type.includes('object')) return 'Expected a dictionary of items.';
      if (type.includes('array')) return 'Expected a list of items.';
      return `Expected ${type}.`;
    }
    case 'minimum':
      return `Ensure this value is greater than or equal to ${String(p.limit)}.`;
    case 'maximum':
      return `Ensure this value is less than or equal to ${String(p.limit)}.`;
    case 'minLength':
      return p.limit === 1
        ? 'This field may not be blank.'
        : `Ensure this field has at least ${String(p.limit)} characters.`;
    case 'maxLength':
      return `Ensure this field has no more than ${String(p.limit)} characters.`;
    case 'format':
      return p.format === 'uuid' ? 'Must be a valid UUID.' : `Enter a valid ${String(p.format)}.`;
    case 'enum':
      return `Must be one of: ${(p.allowedValues as unknown[]).join(', ')}.`;
    case 'additionalProperties':
      return `Unknown field "${String(p.additionalProperty)}".`;
    default:
      return issue.message ?? 'Invalid value.';
  }
}

/** Turns Ajv issues into DRF's nested `{"field": {"sub": ["message"]}}`. */
export function validationBody(issues: AjvIssue[], context: string): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const issue of issues) {
    if (issue.keyword === 'anyOf' || issue.keyword === 'oneOf' || issue.keyword === 'if') continue;
    const path = issue.instancePath.split('/').filter(Boolean).map(decodeURIComponent);
    if (issue.keyword === 'required') path.push(String(issue.params.missingProperty));
    if (issue.keyword === 'additionalProperties')
      path.push(String(issue.params.additionalProperty));
    if (path.length === 0) path.push(context === 'body' ? 'non_field_errors' : context);
    let node = body;
    for (const key of path.slice(0, -1)) {
      const child = node[key];
      if (typeof child !== 'object' || child === null || Array.isArray(child)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    const leaf = path[path.length - 1]!;
    const list = Array.isArray(node[leaf]) ? (node[leaf] as string[]) : [];
    const message = messageFor(issue);
    if (!list.includes(message)) list.push(message);
    node[leaf] = list;
  }
  return body;
}

const DETAIL_BY_CODE: Record<string, [number, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'Request body is too large.'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'Unsupported media type in request.'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'JSON parse error - the body is empty.'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'Request body size did not match Content-Length.'],
};

/**
 * True when the error says the database cannot be reached right now (server shutting
 * down or starting up, connection refused, reset or lost): a 503 the client may retry,
 * not a 500. pg reports server states as SQLSTATE codes, sockets as errno codes.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    if (['57P01', '57P02', '57P03', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(code))
      return true;
    if (/^08[0-9A-Z]{3}$/.test(code)) return true;
  }
  return (
    typeof message === 'string' &&
    /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
      message,
    )
  );
}

/** Retry-After says when: a restart or a failover takes seconds, not minutes. */
export const databaseUnavailable = (cause: unknown): AppError =>
  new AppError(503, 'database_unavailable', 'The database is unavailable; try again shortly.', {
    cause,
    headers: { 'retry-after': '2' },
  });

/**
 * A publish refused because the events accepted before it still wait for the database:
 * nothing of it was written, and the same request may be sent again in a second.
 */
export const publishBufferFull = (cause: unknown): AppError =>
  new AppError(
    503,
    'publish_buffer_full',
    'Too many published events are waiting to be written; try again in a second.',
    { cause, headers: { 'retry-after': '1' } },
  );

/**
 * A 503 says the service as a whole cannot serve now (the database is away, the publish
 * buffer is full), so it comes to every request at once, by the thousand a second. The
 * first of each code in a second is logged whole, with its cause; the others are counted
 * and logged as one line when that second ends.
 */
function unavailableLog(log: FastifyBaseLogger) {
  /** Codes logged in the current second, and how many more came after the first. */
  const more = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  const endSecond = () => {
    for (const [code, count] of more)
      if (count > 0) log.error({ code, more: count }, `${count} more ${code} in the same second`);
    more.clear();
    timer = undefined;
  };
  return (error: AppError, requestLog: FastifyBaseLogger) => {
    const count = more.get(error.code);
    if (count !== undefined) {
      more.set(error.code, count + 1);
      return;
    }
    more.set(error.code, 0);
    requestLog.error({ err: error.cause ?? error }, error.message);
    timer ??= setTimeout(endSecond, 1_000).unref();
  };
}

export function installErrorHandling(app: FastifyInstance): void {
  const unavailable = unavailableLog(app.log);
  app.setErrorHandler((thrown: FastifyError | AppError | Error, request, reply) => {
    const caught = isDatabaseUnavailable(thrown) ? databaseUnavailable(thrown) : thrown;
    if (caught instanceof AppError) {
      if (caught.status === 503) unavailable(caught, request.log);
      else if (caught.status >= 500)
        request.log.error({ err: caught.cause ?? caught }, caught.message);
      return reply.code(caught.status).headers(caught.headers).send(caught.body);
    }
    const error = caught as FastifyError & { validation?: AjvIssue[]; validationContext?: string };
    if (error.validation) {
      // A path that names no possible object (`/webhooks/abc/`) is DRF's 404, or its 405
      // when another method answers on that exact path (`GET .../publish-event/`).
      if (error.validationContext === 'params') return notFound(app, request, reply, false);
      return reply
        .code(400)
        .send(validationBody(error.validation, error.validationContext ?? 'body'));
    }
    const known = error.code ? DETAIL_BY_CODE[error.code] : undefined;
    if (known) {
      const [status, detail] = known;
      const media = request.headers['content-type'];
      const text =
        status === 415 && media ? `Unsupported media type "${media}" in request.` : detail;
      return reply.code(status).send({ detail: text });
    }
    if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return reply.code(400).send({ detail: `JSON parse error - ${error.message}` });
    }
    const status = typeof error.statusCode === 'number' ? error.statusCode : 500;
    if (status >= 400 && status < 500) return reply.code(status).send({ detail: error.message });
    if (status === 503)
      return reply.code(503).send({ detail: 'Service temporarily unavailable, try again later.' });
    request.log.error({ err: toError(caught) }, 'unhandled error');
    return reply.code(500).send({ detail: 'A server error occurred.' });
  });

  app.setNotFoundHandler((request, reply) => notFound(app, request, reply, true));

  // DRF parses JSON and forms only; Fastify's built-in text/plain parser would hand a
  // string to the body schema (a 400) where DRF answers 415 Unsupported Media Type.
  app.removeContentTypeParser('text/plain');
}

/** 405 when some other method answers on the path, else 404 "Not found.". */
function notFound(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  matchIds: boolean,
) {
  const allowed = allowedMethods(app, request.url.split('?')[0] ?? '/', matchIds);
  if (allowed.length > 0) {
    return reply
      .code(405)
      .header('allow', allowed.join(', '))
      .send({ detail: `Method "${request.method}" not allowed.` });
  }
  return reply.code(404).send({ detail: 'Not found.' });
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/**
 * The methods some route answers on this path, so a wrong method gets 405, not 404.
 * Routes name their numeric parameter `:id`; `matchIds` counts those routes too (not
 * when the path's id itself was refused).
 */
function allowedMethods(app: FastifyInstance, path: string, matchIds: boolean): string[] {
  const pattern = path.replace(/\/\d+(?=\/)/g, '/:id');
  return METHODS.filter(
    (method) =>
      app.hasRoute({ method, url: path }) || (matchIds && app.hasRoute({ method, url: pattern })),
  );
}
