import { AppError, toError } from '../core/errors.js';
import { numberText, parseExact } from '../core/exact-json.js';
import type { FetchResult, Sender } from './sender.js';

/**
 * Fetches an object's payload from its model's source URL (`{pk}` replaced), for a
 * publish that does not carry `instance.data`. Only a JSON object is accepted. The
 * fetch goes through the sender, so the SSRF guard covers source URLs as it covers
 * targets.
 */
export async function fetchSourcePayload(
  template: string,
  pk: string | number,
  headers: Record<string, string>,
  timeoutMs: number,
  sender: Sender,
): Promise<Record<string, unknown>> {
  const url = template.replaceAll('{pk}', encodeURIComponent(numberText(pk)));
  let res: FetchResult;
  try {
    res = await sender.fetch(url, { accept: 'application/json', ...headers }, timeoutMs);
  } catch (caught) {
    throw new AppError(
      502,
      'source_unreachable',
      `Could not fetch the object from its source URL: ${toError(caught).message}`,
    );
  }
  const { status, text } = res;
  if (status < 200 || status >= 300) {
    throw new AppError(502, 'source_status', `The object's source URL answered ${status}.`);
  }
  let parsed: unknown;
  try {
    // its numbers kept exact, as a published instance's are (src/core/exact-json.ts)
    parsed = parseExact(text);
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
