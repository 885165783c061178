import { request } from 'undici';
import { AppError, toError } from '../core/errors.js';

/**
 * Fetches an object's payload from its model's source URL (`{pk}` replaced), for a
 * publish that does not carry `instance.data`. Only a JSON object is accepted.
 */
export async function fetchSourcePayload(
  template: string,
  pk: string | number,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const url = template.replaceAll('{pk}', encodeURIComponent(String(pk)));
  let status: number;
  let text: string;
  try {
    const res = await request(url, {
      method: 'GET',
      headers: { accept: 'application/json', ...headers },
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (caught) {
    throw new AppError(
      502,
      'source_unreachable',
      `Could not fetch the object from its source URL: ${toError(caught).message}`,
    );
  }
  if (status < 200 || status >= 300) {
    throw new AppError(502, 'source_status', `The object's source URL answered ${status}.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AppError(502, 'source_not_json', "The object's source URL did not answer with JSON.");
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new AppError(
      502,
      'source_not_object',
      "The object's source URL did not answer with a JSON object.",
    );
  }
  return parsed as Record<string, unknown>;
}
