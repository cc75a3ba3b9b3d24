// The one pattern of every list screen: filters, a page of rows fetched from the server (the API pages and
// filters; the console never holds more than one page), loading, error and empty states.
import { onMounted, reactive, ref, type UnwrapNestedRefs } from 'vue'

import { errorMessage } from './useAction'

export interface Page<Row> {
  items: Row[]
  total: number
}

export type Filters = Record<string, string | number | boolean | null | undefined>

/** Filters as query parameters: empty ones are left out, so the API applies no filter for them. */
export function queryOf(filters: Filters): Record<string, string | number | boolean> {
  const query: Record<string, string | number | boolean> = {}
  for (const [key, value] of Object.entries(filters)) {
    if (value === null || value === undefined || value === '') continue
    query[key] = typeof value === 'string' ? value.trim() : value
  }
  return query
}

export function usePagedList<Row, F extends Filters>(
  fetchPage: (query: { limit: number; offset: number } & Partial<F>) => Promise<Page<Row>>,
  initial: F,
  { pageSize = 20, immediate = true } = {},
) {
  const filters = reactive({ ...initial }) as UnwrapNestedRefs<F>
  const rows = ref<Row[]>([]) as { value: Row[] }
  const total = ref(0)
  const page = ref(1)
  const size = ref(pageSize)
  const loading = ref(false)
  const error = ref('')
  let latest = 0

  async function load(): Promise<void> {
    const ticket = ++latest
    loading.value = true
    error.value = ''
    try {
      const result = await fetchPage({ ...(queryOf(filters as Filters) as Partial<F>), limit: size.value,
        offset: (page.value - 1) * size.value })
      if (ticket !== latest) return // an answer to an older query
      rows.value = result.items
      total.value = result.total
    } catch (failure) {
      if (ticket !== latest) return
      rows.value = []
      total.value = 0
      error.value = errorMessage(failure)
    } finally {
      if (ticket === latest) loading.value = false
    }
  }

  function search(): Promise<void> {
    page.value = 1
    return load()
  }

  function reset(): Promise<void> {
    Object.assign(filters, initial)
    return search()
  }

  if (immediate) onMounted(load)
  return { filters, rows, total, page, size, loading, error, load, search, reset }
}

export type PagedList<Row = unknown> = ReturnType<typeof usePagedList<Row, Filters>>
