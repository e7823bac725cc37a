/** Full GCs (memory-reducing) with event-loop turns between them, so finalizers run too. */
export function collectAll(): Promise<void>;
