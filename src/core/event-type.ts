/**
 * Event-type subscriptions. A webhook subscribes to a name (`package.created`) or a
 * pattern: `*` alone matches every type; a `*` segment matches exactly one segment,
 * except as the last segment, where it matches one or more (`package.*` matches
 * `package.created` and `package.status.shipped`).
 */
export function isPattern(subscription: string): boolean {
  // some segment is `*` alone: the whole of it, the first, the last or one between dots
  // (every publish asks this of its webhook; no array is made for it)
  return (
    subscription === '*' ||
    subscription.startsWith('*.') ||
    subscription.endsWith('.*') ||
    subscription.includes('.*.')
  );
}

export function matchesEventType(subscription: string, eventType: string): boolean {
  if (subscription === '*') return true;
  const pattern = subscription.split('.');
  const name = eventType.split('.');
  for (let i = 0; i < pattern.length; i++) {
    const segment = pattern[i];
    const last = i === pattern.length - 1;
    if (segment === '*' && last) return name.length > i;
    if (i >= name.length) return false;
    if (segment !== '*' && segment !== name[i]) return false;
  }
  return pattern.length === name.length;
}

const NAME = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/i;
const SUBSCRIPTION = /^(\*|[a-z0-9_-]+)(\.(\*|[a-z0-9_-]+))*$/i;

export function isValidEventTypeName(name: string): boolean {
  return name.length <= 200 && NAME.test(name);
}

export function isValidSubscription(value: string): boolean {
  return value.length <= 200 && SUBSCRIPTION.test(value);
}
