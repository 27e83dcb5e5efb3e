/**
 * cty-msgpack: how Nomad encodes plugin and task configs (protocol reference
 * §4). Decoding is schema driven and defensive: nil means absent, numbers may
 * be ints, uint64s, floats or decimal strings, key order is not relied on, and
 * every complaint names the attribute it is about.
 */
import { Decoder, encode, ExtData } from '@msgpack/msgpack';
import { messageOf } from '../../shared/errors';

export type CtyType =
  | 'string'
  | 'number'
  | 'bool'
  | { readonly list: CtyType }
  | { readonly map: CtyType };

export interface AttrSchema {
  readonly type: CtyType;
  readonly required?: boolean;
}

export type ObjectSchema = Readonly<Record<string, AttrSchema>>;

export type CtyValue = string | number | boolean | null | CtyValue[] | { [k: string]: CtyValue };

export class CtyDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CtyDecodeError';
  }
}

export function typeName(t: CtyType): string {
  if (typeof t === 'string') return t;
  if ('list' in t) return `list(${typeName(t.list)})`;
  return `map(${typeName(t.map)})`;
}

function describe(raw: unknown): string {
  if (raw === null || raw === undefined) return 'null';
  if (Array.isArray(raw)) return 'a list';
  if (raw instanceof Uint8Array) return 'binary data';
  if (raw instanceof ExtData) return raw.type === 0 || raw.type === 0x0c ? 'an unknown value' : `a msgpack extension (type ${raw.type})`;
  if (typeof raw === 'object') return 'an object';
  if (typeof raw === 'bigint') return 'a number';
  return `a ${typeof raw}`;
}

/**
 * One decoder for every config: `decode(bytes, options)` builds a Decoder
 * per call. Decoder.decode resets its state on each call and clones itself
 * when re-entered, so sharing it changes nothing but the allocation.
 */
const DECODER = new Decoder({ useBigInt64: true });

const NUMERIC = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function decodeNumber(raw: unknown, where: string): number {
  if (typeof raw === 'number') return raw;
  if (typeof raw === 'bigint') {
    const n = Number(raw);
    if (!Number.isSafeInteger(n)) throw new CtyDecodeError(`${where}: number ${raw} is out of range`);
    return n;
  }
  // cty sends numbers it cannot represent exactly in binary as decimal strings.
  if (typeof raw === 'string' && NUMERIC.test(raw.trim())) {
    const n = Number(raw);
    if (Number.isFinite(n)) return n;
  }
  throw new CtyDecodeError(`${where}: expected number, got ${describe(raw)}`);
}

function decodeValue(raw: unknown, type: CtyType, where: string): CtyValue {
  if (raw === null || raw === undefined) return null;
  if (type === 'string') {
    if (typeof raw === 'string') return raw;
    throw new CtyDecodeError(`${where}: expected string, got ${describe(raw)}`);
  }
  if (type === 'bool') {
    if (typeof raw === 'boolean') return raw;
    throw new CtyDecodeError(`${where}: expected bool, got ${describe(raw)}`);
  }
  if (type === 'number') return decodeNumber(raw, where);
  if ('list' in type) {
    if (!Array.isArray(raw)) throw new CtyDecodeError(`${where}: expected ${typeName(type)}, got ${describe(raw)}`);
    const out: CtyValue[] = new Array<CtyValue>(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const el: unknown = raw[i];
      // A string element of a list(string) (args, unveil, caps): nothing to
      // check, so no `where` string is built for it; anything else goes the
      // general way, with the same messages.
      if (type.list === 'string' && typeof el === 'string') {
        out[i] = el;
        continue;
      }
      const v = decodeValue(el, type.list, `${where}[${i}]`);
      if (v === null) throw new CtyDecodeError(`${where}[${i}]: null element in ${typeName(type)}`);
      out[i] = v;
    }
    return out;
  }
  if (typeof raw !== 'object' || Array.isArray(raw) || raw instanceof Uint8Array || raw instanceof ExtData) {
    throw new CtyDecodeError(`${where}: expected ${typeName(type)}, got ${describe(raw)}`);
  }
  const out: Record<string, CtyValue> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) out[k] = decodeValue(v, type.map, `${where}["${k}"]`);
  return out;
}

/**
 * Decode an object encoded with go-cty's msgpack against `schema`. Missing
 * attributes are null, unknown attributes are rejected, required ones must be
 * present and non-null.
 */
export function decodeObject(bytes: Uint8Array, schema: ObjectSchema, what: string): Record<string, CtyValue> {
  if (bytes.length === 0) throw new CtyDecodeError(`${what}: empty msgpack payload`);
  let raw: unknown;
  try {
    raw = DECODER.decode(bytes);
  } catch (err) {
    throw new CtyDecodeError(`${what}: malformed msgpack: ${messageOf(err)}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || raw instanceof Uint8Array || raw instanceof ExtData) {
    throw new CtyDecodeError(`${what}: expected an object, got ${describe(raw)}`);
  }
  const input = raw as Record<string, unknown>;
  const unknown = Object.keys(input).filter((k) => !(k in schema)).sort();
  if (unknown.length > 0) {
    throw new CtyDecodeError(`${what}: unknown attribute${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}`);
  }
  const out: Record<string, CtyValue> = {};
  for (const [name, attr] of Object.entries(schema)) {
    const v = decodeValue(input[name], attr.type, `${what}: attribute "${name}"`);
    if (v === null && attr.required) throw new CtyDecodeError(`${what}: attribute "${name}" is required`);
    out[name] = v;
  }
  return out;
}

function toCty(value: CtyValue | undefined): unknown {
  if (value === undefined || value === null) return null;
  if (Array.isArray(value)) return value.map(toCty);
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = toCty(value[k]);
    return out;
  }
  if (typeof value === 'number' && !Number.isInteger(value) && Number.isFinite(value)) {
    // cty keeps a fraction that binary cannot represent exactly as a decimal string.
    const exact = value.toString();
    return Number.isInteger(value * 2 ** 30) ? value : exact;
  }
  return value;
}

/**
 * Encode like go-cty: every schema attribute present (null when absent), keys
 * sorted, integers in their smallest form. Used by the Nomad-like harness and
 * the `run` command to build the bytes Nomad would send.
 */
export function encodeObject(values: Record<string, CtyValue | undefined>, schema: ObjectSchema): Uint8Array {
  const full: Record<string, CtyValue> = {};
  for (const name of Object.keys(schema)) full[name] = values[name] ?? null;
  for (const name of Object.keys(values)) if (!(name in schema)) full[name] = values[name] ?? null;
  return encode(toCty(full), { sortKeys: true, forceIntegerToFloat: false, ignoreUndefined: false });
}
