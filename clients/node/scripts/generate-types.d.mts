/** The checked-in file the generator writes. */
export const TYPES_FILE: string;
/** The TypeScript source for an OpenAPI document (the same bytes for the same document). */
export function generateTypes(document: unknown): Promise<string>;
