// The one pattern of every action that changes something: ask first (what will happen, with the amounts),
// then do it, and when the API refuses show its own message. A 401 is left to the sign-in redirect.
import { ElMessage, ElMessageBox } from 'element-plus'
import type { VNode } from 'vue'

import { ApiError } from '@/api'

export function errorMessage(failure: unknown): string {
  if (failure instanceof ApiError) return failure.message
  if (failure instanceof Error) return failure.message
  return String(failure)
}

export async function showRefusal(failure: unknown, title = '操作未完成'): Promise<void> {
  if (failure instanceof ApiError && failure.status === 401) return
  await ElMessageBox.alert(errorMessage(failure), title, { type: 'error', confirmButtonText: '知道了' })
    .catch(() => undefined)
}

export interface ActionOptions<T> {
  /** Asked before anything is sent; leave out only for actions that change nothing of value. */
  confirm?: { title: string; message: string | VNode; confirmText: string; danger?: boolean }
  run: () => Promise<T>
  success?: string | ((result: T) => string)
}

/** The result, or undefined when the person said no or the API refused (its message has been shown). */
export async function confirmAndRun<T>(options: ActionOptions<T>): Promise<T | undefined> {
  if (options.confirm) {
    const { title, message, confirmText, danger } = options.confirm
    try {
      await ElMessageBox.confirm(message, title, {
        type: danger ? 'warning' : 'info', confirmButtonText: confirmText, cancelButtonText: '取消',
        confirmButtonClass: danger ? 'el-button--danger' : undefined, distinguishCancelAndClose: true,
      })
    } catch {
      return undefined
    }
  }
  try {
    const result = await options.run()
    if (options.success) {
      ElMessage.success(typeof options.success === 'function' ? options.success(result) : options.success)
    }
    return result
  } catch (failure) {
    await showRefusal(failure)
    return undefined
  }
}

/** A random Idempotency-Key (crypto.randomUUID would need HTTPS, which a clinic's intranet may not have). */
export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * Idempotency-Keys for one form: sending the same body again (after a timeout, a lost answer, a 5xx) reuses
 * its key, so the API does the work at most once; a body the API refused (4xx, which it remembers under the
 * key) gets a new key next time, as does any other body (the same key with another body is a 409).
 */
export function useIdempotency() {
  const keys = new Map<string, string>()
  return async function send<T>(body: unknown, request: (key: string) => Promise<T>): Promise<T> {
    const id = JSON.stringify(body)
    const key = keys.get(id) ?? newIdempotencyKey()
    keys.set(id, key)
    try {
      return await request(key)
    } catch (failure) {
      if (failure instanceof ApiError && failure.status >= 400 && failure.status < 500) keys.delete(id)
      throw failure
    }
  }
}
