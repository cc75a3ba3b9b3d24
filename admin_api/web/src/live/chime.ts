// The short sound of a new paid booking: a WAV made here (two soft notes, 8 kHz, 8-bit), played from a data URI,
// so nothing is fetched from elsewhere. Browsers refuse to play before the user has interacted with the page;
// that refusal is expected and ignored (the pop-up still shows).

function wav(notes: [number, number][], rate = 8000): Uint8Array {
  const samples: number[] = []
  for (const [freq, ms] of notes) {
    const count = Math.floor((rate * ms) / 1000)
    for (let i = 0; i < count; i++) {
      const envelope = Math.min(1, i / 80, (count - i) / 400)
      samples.push(Math.round(128 + 70 * envelope * Math.sin((2 * Math.PI * freq * i) / rate)))
    }
  }
  const bytes = new Uint8Array(44 + samples.length)
  const view = new DataView(bytes.buffer)
  const text = (offset: number, value: string) => [...value].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)))
  text(0, 'RIFF')
  view.setUint32(4, 36 + samples.length, true)
  text(8, 'WAVEfmt ')
  view.setUint32(16, 16, true) // PCM header size
  view.setUint16(20, 1, true) // PCM
  view.setUint16(22, 1, true) // mono
  view.setUint32(24, rate, true)
  view.setUint32(28, rate, true) // bytes per second
  view.setUint16(32, 1, true) // block align
  view.setUint16(34, 8, true) // bits per sample
  text(36, 'data')
  view.setUint32(40, samples.length, true)
  bytes.set(samples, 44)
  return bytes
}

export function chimeDataUri(): string {
  const bytes = wav([[880, 120], [1320, 180]])
  let binary = ''
  bytes.forEach((b) => { binary += String.fromCharCode(b) })
  return `data:audio/wav;base64,${btoa(binary)}`
}

let uri: string | null = null

export function playChime(): void {
  try {
    uri ??= chimeDataUri()
    const audio = new Audio(uri)
    audio.volume = 0.6
    void audio.play().catch(() => undefined)
  } catch {
    // no audio in this browser: the pop-up is enough
  }
}
