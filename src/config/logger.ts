import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * The root logger. Credentials never reach a line: authorization headers, API keys,
 * secrets, target credentials and signatures are censored wherever they appear in a
 * logged object (at the top level or one or two levels down). Messages are ours and
 * never interpolate a credential; error messages from delivery carry none either.
 */
const SECRET_KEYS = [
  'authorization',
  'cookie',
  'secret_key',
  'secretKey',
  'previous_secret_key',
  'previousSecretKey',
  'password',
  'key',
  'token',
  'webhook-signature',
  'x-whisperer-signature',
];

export const REDACT_PATHS = [
  ...SECRET_KEYS.flatMap((k) => [`["${k}"]`, `*["${k}"]`, `*.*["${k}"]`]),
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.config.auth',
  'config.auth',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}
