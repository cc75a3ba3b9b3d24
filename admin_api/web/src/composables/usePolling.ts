// Re-run `tick` every `intervalMs` while `active()` says there is something to wait for (a running
// reconciliation); stops when the screen goes away.
import { onBeforeUnmount } from 'vue'

export function usePolling(tick: () => Promise<void>, active: () => boolean, intervalMs = 1500) {
  let timer: ReturnType<typeof setTimeout> | null = null
  let stopped = false

  function schedule(): void {
    if (stopped || timer !== null || !active()) return
    timer = setTimeout(async () => {
      timer = null
      await tick()
      schedule()
    }, intervalMs)
  }

  onBeforeUnmount(() => {
    stopped = true
    if (timer !== null) clearTimeout(timer)
  })
  return { schedule }
}
