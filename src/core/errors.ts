/**
 * The one error type of the service. `status` is the HTTP status the API answers with;
 * `body` is the DRF-shaped body (`{"detail": "..."}` or `{"field": ["message"]}`).
 * Details of 5xx errors stay in `cause` and the logs, never in a response.
 */
export type ErrorBody = { detail: string } | Record<string, unknown>;

export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly body: ErrorBody;
  /** Response headers that go with it (Retry-After, say). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    code: string,
    body: ErrorBody | string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    const normalised = typeof body === 'string' ? { detail: body } : body;
    super(typeof body === 'string' ? body : code, options);
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.body = normalised;
    this.headers = options?.headers ?? {};
  }

  static validation(fields: Record<string, unknown>): AppError {
    return new AppError(400, 'validation', fields);
  }

  static badRequest(detail: string): AppError {
    return new AppError(400, 'bad_request', detail);
  }

  static notFound(detail = 'Not found.'): AppError {
    return new AppError(404, 'not_found', detail);
  }

  static forbidden(detail = 'You do not have permission to perform this action.'): AppError {
    return new AppError(403, 'forbidden', detail);
  }

  static unauthenticated(detail = 'Authentication credentials were not provided.'): AppError {
    return new AppError(401, 'unauthenticated', detail);
  }
}

/** Normalises anything caught as `unknown` into an Error, once. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  try {
    return new Error(JSON.stringify(value));
  } catch {
    return new Error(String(value));
  }
}
