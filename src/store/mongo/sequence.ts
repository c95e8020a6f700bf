/**
 * Sequences of documents numbered 0, 1, 2… without gaps, each number a
 * document read by exact `_id` (the only read FerretDB v1 serves by index).
 * A writer takes a number by inserting its document (a duplicate key means
 * taken, and it tries the next one), and nothing deletes a document of a
 * sequence, so the numbers in use are always 0 … end−1: the end can be found
 * by probing, and everything below a taken number is taken.
 */

/**
 * The first free number at or after `from`, given that numbers are taken
 * without gaps from 0: `from` itself when free (one probe), else doubling
 * steps, then a binary search, each probe one `taken` read (about
 * 2·log2(taken numbers) sequential reads for a caller that knows nothing).
 */
export async function firstFreeNumber(taken: (n: number) => Promise<boolean>, from: number): Promise<number> {
  if (!(await taken(from))) return from;
  let low = from; // taken
  let step = 1;
  let high = from + step;
  while (await taken(high)) {
    low = high;
    step *= 2;
    high = low + step;
  }
  // low taken, high free
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (await taken(mid)) low = mid;
    else high = mid;
  }
  return high;
}
