// Who may be given which role (the API decides: this keeps the form to what it will accept), and passwords made
// in the browser for a new user or a reset.
export const ROLES_MANAGED_BY: Record<string, readonly string[]> = {
  admin: ['staff', 'finance', 'admin'],
  operator: ['admin'],
}

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789' // no 0/O, 1/l/I to read it out

/** A random password of `length` characters (rejection sampling: every character equally likely). */
export function generatePassword(length = 14, random: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n))): string {
  const limit = 256 - (256 % ALPHABET.length)
  let out = ''
  while (out.length < length) {
    for (const byte of random(length * 2)) {
      if (byte < limit && out.length < length) out += ALPHABET[byte % ALPHABET.length]
    }
  }
  return out
}
