/**
 * A minimal writer for the few ONNX protobuf messages a tiny hand-built model needs
 * (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto, OperatorSetIdProto).
 *
 * Field numbers are the official ones from onnx/onnx.proto. It is a hand-rolled encoder rather than protobufjs
 * because protobufjs is only a dev dependency, and `writeColorClip` runs at run time too (`clipstream demo`).
 * The tests decode the output with protobufjs against the official schema.
 */

/** `TensorProto.DataType` values we use. */
export const OnnxDataType = { FLOAT: 1, INT64: 7 } as const;
export type OnnxDataTypeName = keyof typeof OnnxDataType;

/** `AttributeProto.AttributeType` values we use. */
const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

export type AttributeValue = { int: number } | { ints: readonly number[] } | { float: number } | { string: string };

export interface OnnxNode {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  attributes?: Readonly<Record<string, AttributeValue>>;
}

export interface OnnxTensor {
  name: string;
  dataType: OnnxDataTypeName;
  dims: readonly number[];
  data: Float32Array | BigInt64Array;
}

export interface OnnxValueInfo {
  name: string;
  elemType: OnnxDataTypeName;
  /** A number is a fixed size, a string a named dynamic dimension (`dim_param`). */
  shape: readonly (number | string)[];
}

export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  initializers: readonly OnnxTensor[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
  docString?: string;
}

export interface OnnxModel {
  irVersion: number;
  opsetVersion: number;
  producerName: string;
  producerVersion?: string;
  docString?: string;
  graph: OnnxGraph;
  metadata?: Readonly<Record<string, string>>;
}

// ---- protobuf wire format ----------------------------------------------------------------------------------------

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_LEN = 2;

function varint(value: number | bigint): Buffer {
  // int64 fields: negative values are written as their 64-bit two's complement (10 bytes), as protobuf does.
  let v = BigInt.asUintN(64, BigInt(value));
  const bytes: number[] = [];
  while (v >= 0x80n) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Buffer.from(bytes);
}

const key = (field: number, wire: number): Buffer => varint((field << 3) | wire);
const fieldVarint = (field: number, value: number | bigint): Buffer =>
  Buffer.concat([key(field, WIRE_VARINT), varint(value)]);
const fieldBytes = (field: number, bytes: Uint8Array): Buffer =>
  Buffer.concat([key(field, WIRE_LEN), varint(bytes.length), bytes]);
const fieldString = (field: number, value: string): Buffer => fieldBytes(field, Buffer.from(value, 'utf8'));

function fieldFloat(field: number, value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatLE(value, 0);
  return Buffer.concat([key(field, WIRE_FIXED32), b]);
}

// ---- ONNX messages -----------------------------------------------------------------------------------------------

function encodeAttribute(name: string, value: AttributeValue): Buffer {
  const parts = [fieldString(1, name)];
  if ('int' in value) parts.push(fieldVarint(20, AttributeType.INT), fieldVarint(3, value.int));
  else if ('ints' in value)
    parts.push(fieldVarint(20, AttributeType.INTS), ...value.ints.map((i) => fieldVarint(8, i)));
  else if ('float' in value) parts.push(fieldVarint(20, AttributeType.FLOAT), fieldFloat(2, value.float));
  else parts.push(fieldVarint(20, AttributeType.STRING), fieldBytes(4, Buffer.from(value.string, 'utf8')));
  return Buffer.concat(parts);
}

function encodeNode(node: OnnxNode): Buffer {
  return Buffer.concat([
    ...node.inputs.map((i) => fieldString(1, i)),
    ...node.outputs.map((o) => fieldString(2, o)),
    ...(node.name === undefined ? [] : [fieldString(3, node.name)]),
    fieldString(4, node.opType),
    ...Object.entries(node.attributes ?? {}).map(([n, v]) => fieldBytes(5, encodeAttribute(n, v))),
  ]);
}

function rawLittleEndian(data: Float32Array | BigInt64Array): Buffer {
  const out = Buffer.alloc(data.length * (data instanceof Float32Array ? 4 : 8));
  if (data instanceof Float32Array) data.forEach((v, i) => out.writeFloatLE(v, i * 4));
  else data.forEach((v, i) => out.writeBigInt64LE(v, i * 8));
  return out;
}

function encodeTensor(t: OnnxTensor): Buffer {
  const expected = t.dims.reduce((a, b) => a * b, 1);
  if (expected !== t.data.length) {
    throw new Error(
      `Expected ${expected} values for tensor ${t.name} of shape [${t.dims.join(', ')}] but received ${t.data.length}`,
    );
  }
  if ((t.dataType === 'FLOAT') !== t.data instanceof Float32Array) {
    throw new Error(`Expected ${t.dataType} data for tensor ${t.name}`);
  }
  return Buffer.concat([
    ...t.dims.map((d) => fieldVarint(1, d)),
    fieldVarint(2, OnnxDataType[t.dataType]),
    fieldString(8, t.name),
    fieldBytes(9, rawLittleEndian(t.data)),
  ]);
}

function encodeValueInfo(v: OnnxValueInfo): Buffer {
  const dims = v.shape.map((d) => fieldBytes(1, typeof d === 'number' ? fieldVarint(1, d) : fieldString(2, d)));
  const shape = Buffer.concat(dims); // TensorShapeProto
  const tensorType = Buffer.concat([fieldVarint(1, OnnxDataType[v.elemType]), fieldBytes(2, shape)]); // TypeProto.Tensor
  const type = fieldBytes(1, tensorType); // TypeProto { tensor_type = 1 }
  return Buffer.concat([fieldString(1, v.name), fieldBytes(2, type)]);
}

function encodeGraph(g: OnnxGraph): Buffer {
  return Buffer.concat([
    ...g.nodes.map((n) => fieldBytes(1, encodeNode(n))),
    fieldString(2, g.name),
    ...g.initializers.map((t) => fieldBytes(5, encodeTensor(t))),
    ...(g.docString === undefined ? [] : [fieldString(10, g.docString)]),
    ...g.inputs.map((v) => fieldBytes(11, encodeValueInfo(v))),
    ...g.outputs.map((v) => fieldBytes(12, encodeValueInfo(v))),
  ]);
}

/** Serialises a model to the bytes of an `.onnx` file. */
export function encodeOnnxModel(m: OnnxModel): Uint8Array {
  const opset = Buffer.concat([fieldString(1, ''), fieldVarint(2, m.opsetVersion)]);
  return Buffer.concat([
    fieldVarint(1, m.irVersion),
    fieldString(2, m.producerName),
    ...(m.producerVersion === undefined ? [] : [fieldString(3, m.producerVersion)]),
    ...(m.docString === undefined ? [] : [fieldString(6, m.docString)]),
    fieldBytes(7, encodeGraph(m.graph)),
    fieldBytes(8, opset),
    ...Object.entries(m.metadata ?? {}).map(([k, v]) =>
      fieldBytes(14, Buffer.concat([fieldString(1, k), fieldString(2, v)])),
    ),
  ]);
}
