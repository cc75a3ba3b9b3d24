// Random identifiers that work outside a secure context too (a demo phone on the LAN over plain http).

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

export function randomToken(length: number, alphabet = ALPHABET): string {
  const bytes = new Uint8Array(length)
  crypto.getRandomValues(bytes)
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('')
}

export function randomDigits(length: number): string {
  return randomToken(length, '0123456789')
}
