import { createClient } from './client.js';

/**
 * The 0.0.1 client bound to mongoose's default connection: call
 * `mongoose.connect()`, then use it. The package's only singleton; it opens
 * nothing until its first call.
 */
export const client = createClient();
