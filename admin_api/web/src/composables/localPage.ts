// The lists the set-up API answers whole (a clinic's items, the platform's clinics, the users one manages: tens of
// rows, not thousands) shown through the same usePagedList + PagedTable as the paged ones: filtered and cut into
// pages here, so that the screens look and behave alike.
import type { Page } from './usePagedList'

export function pageLocally<Row>(rows: readonly Row[], query: { limit: number; offset: number },
  keep: (row: Row) => boolean = () => true): Page<Row> {
  const kept = rows.filter(keep)
  return { items: kept.slice(query.offset, query.offset + query.limit), total: kept.length }
}

/** Whether any of `fields` contains the typed text (case-insensitive; an empty text keeps every row). */
export function matchesText(text: string | undefined, ...fields: (string | null | undefined)[]): boolean {
  const needle = (text ?? '').trim().toLowerCase()
  return !needle || fields.some((field) => (field ?? '').toLowerCase().includes(needle))
}
