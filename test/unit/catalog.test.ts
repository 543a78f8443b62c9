import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../../src/errors.js';
import { createCatalog, loadCatalog } from '../../src/payments/catalog.js';
import type { CatalogFile } from '../../src/payments/catalog.js';

const FILE: CatalogFile = {
  currency: 'eur',
  items: [
    { sku: 'tea-01', name: 'Green tea', unit_amount: 1290 },
    { sku: 'tea-02', name: 'Black tea', unit_amount: 990 },
    { sku: 'gold', name: 'Golden teapot', unit_amount: 100_000_000 },
  ],
};

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('catalog pricing', () => {
  const catalog = createCatalog(FILE);

  test('when items are requested, then prices come from the catalog and the total is their sum', () => {
    const priced = catalog.price([
      { sku: 'tea-01', quantity: 2 },
      { sku: 'tea-02', quantity: 1 },
    ]);
    expect(priced.items).toEqual([
      { sku: 'tea-01', quantity: 2, unitAmount: 1290 },
      { sku: 'tea-02', quantity: 1, unitAmount: 990 },
    ]);
    expect(priced.amount).toBe(2 * 1290 + 990);
  });

  test('when the same sku comes twice, then it is one line with the quantities added', () => {
    const priced = catalog.price([
      { sku: 'tea-02', quantity: 1 },
      { sku: 'tea-01', quantity: 1 },
      { sku: 'tea-02', quantity: 3 },
    ]);
    expect(priced.items).toEqual([
      { sku: 'tea-02', quantity: 4, unitAmount: 990 },
      { sku: 'tea-01', quantity: 1, unitAmount: 1290 },
    ]);
    expect(priced.amount).toBe(4 * 990 + 1290);
  });

  test('when a sku is not sold here, then it is AppError unknown_sku (422) naming the sku', () => {
    const error = thrown(() =>
      catalog.price([
        { sku: 'tea-01', quantity: 1 },
        { sku: 'coffee', quantity: 1 },
      ]),
    );
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'unknown_sku', status: 422 });
    expect((error as AppError).message).toContain('"coffee"');
  });

  test('when the total is exactly the cap (1,000,000.00), then it is accepted', () => {
    expect(catalog.price([{ sku: 'gold', quantity: 1 }]).amount).toBe(100_000_000);
  });

  test('when the total is above the cap, then it is AppError amount_too_large', () => {
    const error = thrown(() =>
      catalog.price([
        { sku: 'gold', quantity: 1 },
        { sku: 'tea-02', quantity: 1 },
      ]),
    );
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'amount_too_large', status: 422 });
  });

  test('the catalog exposes its currency and items', () => {
    expect(catalog.currency).toBe('eur');
    expect(catalog.items.map((i) => i.sku)).toEqual(['tea-01', 'tea-02', 'gold']);
  });
});

describe('loadCatalog', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'catalog-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function write(name: string, content: string): string {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  }

  test('when the file is a valid catalog, then it prices from it', () => {
    const path = write('ok.json', JSON.stringify(FILE));
    expect(loadCatalog(path).price([{ sku: 'tea-01', quantity: 3 }]).amount).toBe(3870);
  });

  test('when the file is missing, then the error names CATALOG_FILE and the path', () => {
    const path = join(dir, 'missing.json');
    expect(() => loadCatalog(path)).toThrow(new RegExp(`^CATALOG_FILE: cannot read ${path}: `));
  });

  test('when the file is not JSON, then the error names CATALOG_FILE and the path', () => {
    const path = write('broken.json', '{"currency": "eur", items: [');
    expect(() => loadCatalog(path)).toThrow(new RegExp(`^CATALOG_FILE: cannot read ${path}: `));
  });

  test.each([
    ['no items', { currency: 'eur', items: [] }],
    ['an upper-case currency', { ...FILE, currency: 'EUR' }],
    ['a price in major units', { currency: 'eur', items: [{ sku: 'a', name: 'A', unit_amount: 12.9 }] }],
    ['a zero price', { currency: 'eur', items: [{ sku: 'a', name: 'A', unit_amount: 0 }] }],
    ['a sku with a space', { currency: 'eur', items: [{ sku: 'a b', name: 'A', unit_amount: 1 }] }],
    ['an unknown field', { currency: 'eur', items: [{ sku: 'a', name: 'A', unit_amount: 1, price: 1 }] }],
    [
      'a sku listed twice',
      {
        currency: 'eur',
        items: [
          { sku: 'a', name: 'A', unit_amount: 1 },
          { sku: 'a', name: 'A2', unit_amount: 2 },
        ],
      },
    ],
  ])('when the catalog has %s, then the error says it is not a valid catalog', (_name, content) => {
    const path = write('invalid.json', JSON.stringify(content));
    expect(() => loadCatalog(path)).toThrow(new RegExp(`^CATALOG_FILE: ${path} is not a valid catalog: .+`));
  });
});
