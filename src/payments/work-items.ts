/**
 * Names of the work items on the scheduler's due set, `<kind>:<arg>`, built and parsed only here.
 * The worker loop runs the handler of the kind with the arg; the transition script
 * (store/lua/transition-6.lua) writes the event's position where a hook name holds `#`.
 */

/** Where a webhook goes: `g` is WEBHOOK_URL, `c` the checkout's callback_url. */
export type HookTarget = 'g' | 'c';

export const workItem = {
  /** Ask the bank's token endpoint about the payment's authorization (CIBA Core §7.3). */
  poll: (paymentId: string) => `poll:${paymentId}`,
  /** Send the authorized payment to the bank's payment API. */
  submit: (paymentId: string) => `submit:${paymentId}`,
  /** Deliver the payment's event at `position` (1-based, in its event log; `#`: the event being written) to `target`. */
  hook: (paymentId: string, position: number | '#', target: HookTarget) => `hook:${paymentId}:${position}:${target}`,
};

export type WorkKind = keyof typeof workItem;

/** `poll:pay_1` → kind `poll`, arg `pay_1`; null when the name has no kind. */
export function parseWorkItem(member: string): { kind: string; arg: string } | null {
  const sep = member.indexOf(':');
  return sep > 0 ? { kind: member.slice(0, sep), arg: member.slice(sep + 1) } : null;
}

/** The payment a work item is about: `poll:pay_x`, `hook:pay_x:3:g` → `pay_x`; a bare id is returned as it is. */
export function paymentOfWorkItem(memberOrId: string): string {
  const start = memberOrId.indexOf(':') + 1;
  const end = memberOrId.indexOf(':', start);
  return end === -1 ? memberOrId.slice(start) : memberOrId.slice(start, end);
}

/** The arg of a hook item, `<paymentId>:<position>:<g|c>`; null when it is not one. */
export function parseHookArg(arg: string): { paymentId: string; position: number; target: HookTarget } | null {
  const m = /^([A-Za-z0-9_-]{1,64}):([1-9]\d{0,8}):([gc])$/.exec(arg);
  return m?.[1] && m[2] && m[3] ? { paymentId: m[1], position: Number(m[2]), target: m[3] as HookTarget } : null;
}
