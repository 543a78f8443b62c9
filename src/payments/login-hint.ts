import { sha256 } from '../crypto/hashing.js';

/**
 * How one customer is named, to the bank and to our limits.
 *
 * - To the bank: trimmed and NFKC-normalised. Spaces around an identifier are never part of it, and
 *   compatibility forms (full-width letters from a phone keyboard) name the same account to a person
 *   (the width mapping of RFC 8265 §3.3 PRECIS usernames). Case is kept: only the bank knows whether
 *   its identifiers are case-sensitive.
 * - To the limits (push bombing, CIBA Core §7.1 and §15): additionally case-folded. Folding can only
 *   merge two customers' limits (stricter for both), never split one customer's requests across
 *   several counters, so an attacker cannot escape a cap by writing `USER`, ` user ` or `ｕｓｅｒ`.
 *   JavaScript has no full case fold; upper then lower case covers the common multi-letter folds
 *   (ß → SS → ss, final sigma ς → Σ → σ).
 * The limit key is hashed: login hints identify bank customers and do not belong in Redis in the clear.
 */
export interface CustomerKeys {
  /** The login_hint sent to the bank. */
  loginHint: string;
  /** Stable, opaque key of the customer for limits (a hash of the folded form). */
  limitKey: string;
}

export function normaliseLoginHint(raw: string): CustomerKeys {
  const loginHint = raw.normalize('NFKC').trim();
  const folded = loginHint.toUpperCase().toLowerCase();
  return { loginHint, limitKey: sha256(folded) };
}
