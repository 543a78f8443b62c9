import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { AppError } from '../errors.js';
import type { LineItem } from './payment.js';

/** The shop's price list (CATALOG_FILE). Prices come from here, never from the client. */
const catalogSchema = z.strictObject({
  currency: z.string().regex(/^[a-z]{3}$/),
  items: z
    .array(
      z.strictObject({
        sku: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
        name: z.string().min(1).max(200),
        unit_amount: z.number().int().positive().max(100_000_000),
        description: z.string().max(500).optional(),
        image: z.string().max(500).optional(),
      }),
    )
    .min(1)
    .refine((items) => new Set(items.map((i) => i.sku)).size === items.length, 'every sku must be listed once'),
});

export type CatalogFile = z.infer<typeof catalogSchema>;
export type CatalogItem = CatalogFile['items'][number];

export interface Catalog {
  currency: string;
  items: readonly CatalogItem[];
  /** Prices the requested items; throws AppError `unknown_sku` for an item not sold here. */
  price(requested: readonly { sku: string; quantity: number }[]): { items: LineItem[]; amount: number };
}

/** Largest single payment, in minor units: beyond it a typo, not a purchase. */
const MAX_AMOUNT = 1_000_000_00;

export function createCatalog(file: CatalogFile): Catalog {
  const bySku = new Map(file.items.map((i) => [i.sku, i]));
  return {
    currency: file.currency,
    items: file.items,
    price(requested) {
      const merged = new Map<string, number>();
      for (const r of requested) merged.set(r.sku, (merged.get(r.sku) ?? 0) + r.quantity);
      const items: LineItem[] = [];
      let amount = 0;
      for (const [sku, quantity] of merged) {
        const item = bySku.get(sku);
        if (!item) throw new AppError('unknown_sku', `No item with sku "${sku}" is sold here.`);
        items.push({ sku, quantity, unitAmount: item.unit_amount });
        amount += item.unit_amount * quantity;
      }
      if (amount > MAX_AMOUNT) throw new AppError('amount_too_large', 'The total is larger than one payment may be.');
      return { items, amount };
    },
  };
}

export function loadCatalog(path: string): Catalog {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`CATALOG_FILE: cannot read ${path}: ${(err as Error).message}`);
  }
  const parsed = catalogSchema.safeParse(raw);
  if (!parsed.success)
    throw new Error(`CATALOG_FILE: ${path} is not a valid catalog: ${parsed.error.issues[0]?.message ?? ''}`);
  return createCatalog(parsed.data);
}
