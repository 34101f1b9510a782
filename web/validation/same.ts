/**
 * A compile-time check that a response schema describes exactly a type the coordinator
 * returns: `Expect<Same<z.infer<typeof S>, T>>` does not compile unless the two are identical,
 * so the OpenAPI document cannot drift from what handlers send.
 */
export type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

export type Expect<T extends true> = T;
