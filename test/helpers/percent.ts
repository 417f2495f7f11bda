/** Percent-decodes an encoded name or key part that was not hashed (the inverse of the key encoding). */
export function percentDecode(form: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < form.length; i++) {
    if (form[i] === '%') {
      bytes.push(parseInt(form.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(form.charAt(i), 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
