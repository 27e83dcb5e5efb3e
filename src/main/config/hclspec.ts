/**
 * Small builders for hclspec trees, and the one description of each of our
 * config blocks from which both the wire Spec and the msgpack decoder schema
 * are derived (so they cannot drift apart).
 */
import type { Spec } from '../../gen/hashicorp/nomad/plugins/shared/hclspec/hclspec';
import { typeName, type CtyType, type ObjectSchema } from './cty';

export interface AttrDef {
  readonly type: CtyType;
  readonly required?: boolean;
  /** HCL literal expression used when the attribute is absent, e.g. `true`. */
  readonly default?: string;
}

export type BlockDef = Readonly<Record<string, AttrDef>>;

export const attrSpec = (name: string, type: string, required = false): Spec => ({ Attr: { name, type, required } });
export const literalSpec = (value: string): Spec => ({ literal: { value } });
export const defaultSpec = (primary: Spec, dflt: Spec): Spec => ({ default: { primary, default: dflt } });

export function objectSpec(def: BlockDef): Spec {
  const attributes: Record<string, Spec> = {};
  for (const [name, a] of Object.entries(def)) {
    const attr = attrSpec(name, typeName(a.type), a.required ?? false);
    attributes[name] = a.default === undefined ? attr : defaultSpec(attr, literalSpec(a.default));
  }
  return { object: { attributes } };
}

export function decoderSchema(def: BlockDef): ObjectSchema {
  const schema: Record<string, { type: CtyType; required?: boolean }> = {};
  for (const [name, a] of Object.entries(def)) schema[name] = a.required ? { type: a.type, required: true } : { type: a.type };
  return schema;
}
