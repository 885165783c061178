/**
 * Retry countdown strategies, as in the OMS's webhook library: after the n-th failed
 * attempt the next one waits `countdownSeconds(config, n)` seconds.
 */
export type RetryCountdownConfig =
  | { choice: 'fixed'; kwargs: { seconds: number } }
  | { choice: 'linear'; kwargs: { base: number; limit?: number | null } }
  | {
      choice: 'exponential';
      kwargs: { base: number; factor?: number | null; limit?: number | null };
    }
  | { choice: 'random'; kwargs: { min_value: number; max_value: number } };

export const RETRY_CHOICES = ['fixed', 'linear', 'exponential', 'random'] as const;

export const DEFAULT_RETRY_COUNTDOWN: RetryCountdownConfig = {
  choice: 'exponential',
  kwargs: { base: 2 },
};

/** Countdowns never exceed a week, whatever the strategy computes (2**18 s is three days). */
export const MAX_COUNTDOWN_SECONDS = 7 * 24 * 3600;

export function countdownSeconds(
  config: RetryCountdownConfig,
  retry: number,
  random: () => number = Math.random,
): number {
  const capped = (value: number, limit?: number | null): number =>
    Math.min(limit ?? Number.POSITIVE_INFINITY, value, MAX_COUNTDOWN_SECONDS);
  switch (config.choice) {
    case 'fixed':
      return capped(config.kwargs.seconds);
    case 'linear':
      return capped(config.kwargs.base * retry, config.kwargs.limit);
    case 'exponential':
      return capped((config.kwargs.factor ?? 1) * config.kwargs.base ** retry, config.kwargs.limit);
    case 'random': {
      const { min_value: min, max_value: max } = config.kwargs;
      return capped(min + Math.floor(random() * (max - min + 1)));
    }
  }
}

type FieldErrors = Record<string, unknown>;

const isNonNegativeInt = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0;

/**
 * Validates a retry_countdown_config from a request. Returns the normalised config or
 * DRF-style field errors (`{"kwargs": {"base": ["..."]}}`).
 */
export function parseRetryCountdownConfig(
  input: unknown,
): { ok: true; value: RetryCountdownConfig } | { ok: false; errors: FieldErrors } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return {
      ok: false,
      errors: { non_field_errors: ['Expected an object with "choice" and "kwargs".'] },
    };
  }
  const { choice, kwargs } = input as { choice?: unknown; kwargs?: unknown };
  if (typeof choice !== 'string' || !(RETRY_CHOICES as readonly string[]).includes(choice)) {
    return {
      ok: false,
      errors: {
        choice: [
          `"${String(choice)}" is not a valid choice. Use one of: ${RETRY_CHOICES.join(', ')}.`,
        ],
      },
    };
  }
  const args = (kwargs ?? {}) as Record<string, unknown>;
  if (typeof args !== 'object' || Array.isArray(args)) {
    return { ok: false, errors: { kwargs: ['Expected an object.'] } };
  }
  const spec: Record<string, { required: boolean }> = {
    fixed: { seconds: { required: true } },
    linear: { base: { required: true }, limit: { required: false } },
    exponential: {
      base: { required: true },
      factor: { required: false },
      limit: { required: false },
    },
    random: { min_value: { required: true }, max_value: { required: true } },
  }[choice] as unknown as Record<string, { required: boolean }>;
  const errors: Record<string, string[]> = {};
  const value: Record<string, number> = {};
  for (const [name, { required }] of Object.entries(spec)) {
    const v = args[name];
    if (v === undefined || v === null) {
      if (required) errors[name] = ['This field is required.'];
      continue;
    }
    if (!isNonNegativeInt(v)) {
      errors[name] = ['Ensure this value is a non-negative integer.'];
      continue;
    }
    value[name] = v;
  }
  for (const name of Object.keys(args)) {
    if (!(name in spec)) errors[name] = [`Unknown argument for "${choice}".`];
  }
  if (choice === 'random' && !errors.min_value && !errors.max_value) {
    if ((value.min_value ?? 0) >= (value.max_value ?? 0)) {
      errors.non_field_errors = ['min_value must be less than max_value.'];
    }
  }
  if (Object.keys(errors).length > 0) return { ok: false, errors: { kwargs: errors } };
  return { ok: true, value: { choice, kwargs: value } as RetryCountdownConfig };
}
