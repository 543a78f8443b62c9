import type { ServiceOptions } from './service.js';

/**
 * Routers and work handlers beyond the core flow (webhook delivery, server-sent events, API docs).
 * Kept apart from service.ts so each capability wires itself in one place.
 */
export const webhookExtensions: NonNullable<ServiceOptions['extensions']> = () => ({});
