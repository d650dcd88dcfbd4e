/** Bytes a protobuf varint of `value` takes: a field's length prefix, say. */
export function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    length++;
  }
  return length;
}
