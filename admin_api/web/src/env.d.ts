/// <reference types="vite/client" />

/** The admin API's paths in openapi.json when the console was built (vite.config.ts). */
declare const __API_PATHS__: string[]
