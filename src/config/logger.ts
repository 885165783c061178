import pino, { type Logger } from 'pino';

/**
 * The root logger. Credentials never reach a line: request authorization headers,
 * secrets and signatures are censored wherever they appear in a logged object.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.secret_key',
  '*.secretKey',
  '*.password',
  '*.key',
  '*.token',
  'headers["webhook-signature"]',
  'headers["x-whisperer-signature"]',
];

export function createLogger(level: string): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
}
