/** Certificate serials compared across Node (upper-case hex) and forge (lower-case, maybe zero-padded). */
export function normalizeSerial(serial: string): string {
  return serial.replace(/:/g, '').toUpperCase().replace(/^0+(?=.)/, '');
}
