/**
 * The functions a cache hands out: wrapped functions ({@link makeCachedFunction}) and decorated
 * methods ({@link cachedDecorator}, TC39 standard and legacy `experimentalDecorators`), each
 * with `invalidate(...args)`, `key(...args)` and `many(argsList)`.
 *
 * @module
 */

import type { FunctionPolicy } from './core/function.js';
import type { CallInfo } from './core/info.js';
import { OptionError } from './errors.js';
import type { WrapOptions } from './options.js';

/** A wrapped function: `fn`'s parameters, a Promise of its result, and cache controls. */
export interface CachedFunction<Args extends unknown[], Result> {
  /** Calls through the cache. */
  (...args: Args): Promise<Awaited<Result>>;
  /** Drops the entry of these arguments (one request). Rejects if the backend fails. */
  invalidate(...args: Args): Promise<void>;
  /** The entry key of these arguments, for operators and debugging. */
  key(...args: Args): string;
  /**
   * Calls through the cache for each argument list, and resolves with the results in the same
   * order — the batch form of a call, for a service answering many ids at once. Each element
   * gets exactly the decisions of a single call (it joins a call in flight, is a hit, a stale
   * value, a computation under the lock it took, or waits for the process that holds it), but
   * the reads of the batch go out together: on Redis one request per server, on Memcached one
   * multi-get per server, in-process directly. The function runs only for the misses this
   * process locked, each on its own; equal argument lists in one batch are read and computed
   * once.
   *
   * Like `Promise.all`: rejects with the first error of an element (an `ArgumentError`, the
   * function's own, a `TimeoutError`…), and the other elements go on — what they compute is
   * still cached. For one outcome per element, call the function per element
   * (`Promise.allSettled(argsList.map((args) => fn(...args)))`: the same reads, sent one by one).
   */
  many(argsList: readonly Args[]): Promise<Awaited<Result>[]>;
  /**
   * The fresh cached value of these arguments, or `undefined`: one read (one request on
   * Redis), without computing, locking or counting a hit or a miss. A stale value is not
   * fresh; a cached `undefined` looks like none (use {@link CachedFunction.withInfo} to tell).
   * A store failure resolves `undefined` (reported as an `error` event; rejects without `failOpen`).
   */
  peek(...args: Args): Promise<Awaited<Result> | undefined>;
  /**
   * Stores `value` as the result for `args` (write-through), under the tags' current versions
   * and the function's TTL: one request on Redis. A computation of the same entry in flight
   * drops its write; an invalidation after it (`clean(tags)`, `invalidate`) drops the value.
   * Rejects with a `SerializationError` for a value the store cannot encode, with a
   * `BackendError` if the store fails.
   */
  set(args: Args, value: Awaited<Result>): Promise<void>;
  /**
   * Computes the result now and stores it, whatever is cached, and resolves to it. One
   * computation across processes: the lock is taken as on a miss; if another caller holds it,
   * this one waits for its write and resolves to that value.
   */
  refresh(...args: Args): Promise<Awaited<Result>>;
  /**
   * Calls through the cache, as a plain call does, and tells how the value was obtained
   * (`status`: `'hit'`, `'miss'`, `'stale'`, `'fallback'`, `'joined'`), its `age` and its
   * `ttlLeft`, in seconds: what a service needs for `Cache-Status` and `Age` headers.
   */
  withInfo(...args: Args): Promise<CallInfo<Awaited<Result>>>;
  /** The name used in this function's keys. */
  readonly cacheName: string;
  /**
   * The tags of this function's entries, as given to `wrap`. Empty when `tags` is a function:
   * each entry then carries the tags it returned for the entry's arguments.
   */
  readonly tags: readonly string[];
}

/**
 * The decorator returned by `Hermes.cached`: works as a TC39 standard method decorator
 * (TypeScript 5's default) and as a legacy `experimentalDecorators` one.
 *
 * `KeyArgs` are the parameters of the `key` option (inferred from its annotated parameters, or
 * given as `cache.cached<[id: number]>(…)`): the standard form accepts only a method whose
 * parameters fit them, so a `key` that does not match the method is a compile error.
 * `KeyResult` is the result the `ttl` and `cacheIf` functions take (`unknown` unless
 * annotated or given): the method must resolve to it.
 */
export interface CachedMethodDecorator<KeyArgs extends unknown[] = unknown[], KeyResult = unknown> {
  /** TC39 standard decorator form. The method must return a Promise (be `async`). */
  <This, Args extends KeyArgs, Result extends KeyResult>(
    method: (this: This, ...args: Args) => Promise<Result>,
    context: ClassMethodDecoratorContext<This, (this: This, ...args: Args) => Promise<Result>>,
  ): (this: This, ...args: Args) => Promise<Result>;
  /** Legacy (`experimentalDecorators`) form. */
  (target: object, propertyKey: string | symbol, descriptor: PropertyDescriptor): PropertyDescriptor;
}

/**
 * A decorated method seen with its cache controls: a decorator cannot change the type of the
 * method it decorates, so `asCached(obj.method).invalidate(…)` stands for
 * `(obj.method as unknown as CachedFunction<Args, Result>).invalidate(…)`, typed from the
 * method. Also accepts a wrapped function (returned as is).
 *
 * With `thisArg`, the controls are bound to it: `asCached(repo.find, repo).many([[1], [2]])`
 * runs the method on `repo` for the misses. (`repo.find.many(…)` alone would run it with
 * `this` set to the method itself, which a method that uses `this` cannot work with.)
 *
 * @throws {@link OptionError} if `method` was not made by `wrap` or `@cached()`
 */
export function asCached<Args extends unknown[], Result>(
  method: (...args: Args) => Promise<Result>,
  thisArg: unknown = UNBOUND,
): CachedFunction<Args, Result> {
  const candidate = method as Partial<Record<'invalidate' | 'key', unknown>> | undefined;
  if (typeof method !== 'function' || typeof candidate?.invalidate !== 'function' || typeof candidate.key !== 'function') {
    throw new OptionError('method', 'asCached() takes a function wrapped by cache.wrap() or a method decorated with @cache.cached()');
  }
  if (thisArg === UNBOUND) return method as unknown as CachedFunction<Args, Result>;
  return boundTo(method, thisArg) as unknown as CachedFunction<Args, Result>;
}

/** {@link asCached} without `thisArg`. */
const UNBOUND: unique symbol = Symbol('unbound');

/** A cached function whose call and controls (every function-valued own property) run with `this` set to `thisArg`. */
function boundTo(method: AnyFunction, thisArg: unknown): AnyFunction {
  const source = method as unknown as Record<string, unknown>;
  const bound = function (...args: unknown[]): unknown {
    return (method as (...a: unknown[]) => unknown).apply(thisArg, args);
  };
  const properties: PropertyDescriptorMap = { name: { value: method.name }, [WRAPS]: { value: method } };
  for (const name of Object.getOwnPropertyNames(method)) {
    const control = source[name];
    if (name === 'prototype' || name in properties) continue;
    properties[name] =
      typeof control === 'function'
        ? { value: (...args: unknown[]) => (control as (...a: unknown[]) => unknown).apply(thisArg, args) }
        : { value: control, enumerable: true };
  }
  Object.defineProperties(bound, properties);
  return bound;
}

/** What the functions handed out call back into: the cache. */
export interface FunctionHost {
  /** Compiles a function under a name (`defaultName` unless the options name it). */
  compile(fn: AnyFunction, options: WrapOptions, defaultName: string): FunctionPolicy;
  /** One call through the cache. */
  call(policy: FunctionPolicy, thisArg: unknown, args: unknown[]): Promise<unknown>;
  /** Drops the entry of these arguments. */
  invalidate(policy: FunctionPolicy, args: readonly unknown[]): Promise<void>;
  /** A batch of calls through the cache, one promise per argument list, in order. */
  many(policy: FunctionPolicy, thisArg: unknown, argsList: readonly (readonly unknown[])[]): Promise<unknown>[];
  /** The entry key of these arguments. */
  entryKey(policy: FunctionPolicy, args: readonly unknown[]): string;
  /** The fresh cached value of these arguments, or `undefined`. */
  peek(policy: FunctionPolicy, args: readonly unknown[]): Promise<unknown>;
  /** Stores a value for these arguments. */
  set(policy: FunctionPolicy, args: readonly unknown[], value: unknown): Promise<void>;
  /** Computes and stores the value of these arguments, one computation across processes. */
  refresh(policy: FunctionPolicy, thisArg: unknown, args: unknown[]): Promise<unknown>;
  /** One call through the cache, with how it was answered. */
  withInfo(policy: FunctionPolicy, thisArg: unknown, args: unknown[]): Promise<CallInfo<unknown>>;
}

/** Any function. */
export type AnyFunction = (...args: never[]) => unknown;

/**
 * Marks a function that hermes built around another (a decorated method's replacement, a
 * wrapped function) with the function it calls, so that {@link findOwner} sees through
 * stacked caches.
 */
const WRAPS = Symbol('hermes.wraps');

/** The function handed out for a compiled one. */
export function makeCachedFunction<Args extends unknown[], Result>(
  host: FunctionHost,
  policy: FunctionPolicy,
): CachedFunction<Args, Result> {
  const cachedFunction = function (this: unknown, ...args: unknown[]): Promise<unknown> {
    return host.call(policy, this, args);
  } as unknown as CachedFunction<Args, Result>;
  Object.defineProperties(cachedFunction, {
    name: { value: policy.fn.name || policy.name },
    [WRAPS]: { value: policy.fn },
    cacheName: { value: policy.name, enumerable: true },
    tags: { value: Object.freeze([...policy.tags]), enumerable: true },
    invalidate: { value: (...args: Args) => host.invalidate(policy, args) },
    key: { value: (...args: Args) => host.entryKey(policy, args) },
    many: {
      value(this: unknown, argsList: readonly Args[]): Promise<unknown[]> {
        // Called as `fn.many(…)`: `this` is the function itself, not a receiver of the calls.
        return manyOf(host, policy, this === cachedFunction ? undefined : this, argsList);
      },
    },
    peek: { value: (...args: Args) => host.peek(policy, args) },
    set: { value: (args: Args, value: unknown) => host.set(policy, args, value) },
    // `this` as a plain call of the wrapped function has it, unless called on the function.
    refresh: {
      value(this: unknown, ...args: unknown[]): Promise<unknown> {
        return host.refresh(policy, this === cachedFunction ? undefined : this, args);
      },
    },
    withInfo: {
      value(this: unknown, ...args: unknown[]): Promise<CallInfo<unknown>> {
        return host.withInfo(policy, this === cachedFunction ? undefined : this, args);
      },
    },
  });
  return cachedFunction;
}

/**
 * `many(argsList)` of a wrapped function or decorated method: the batch's promises combined as
 * `Promise.all` does. `argsList` must be an array of argument arrays.
 */
function manyOf(host: FunctionHost, policy: FunctionPolicy, thisArg: unknown, argsList: readonly (readonly unknown[])[]): Promise<unknown[]> {
  if (!Array.isArray(argsList) || !argsList.every((args) => Array.isArray(args))) {
    return Promise.reject(new OptionError('argsList', 'many() takes an array of argument lists, e.g. fn.many([[1], [2]])'));
  }
  try {
    return Promise.all(host.many(policy, thisArg, argsList));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The `@cache.cached(options)` decorator, both forms. */
export function cachedDecorator<KeyArgs extends unknown[], KeyResult = unknown>(
  host: FunctionHost,
  options: WrapOptions,
): CachedMethodDecorator<KeyArgs, KeyResult> {
  const decorator = (
    target: unknown,
    context: ClassMethodDecoratorContext | string | symbol,
    descriptor?: PropertyDescriptor,
  ): unknown => {
    if (typeof context === 'object' && context !== null && 'kind' in context) {
      // TC39 standard decorator.
      if (context.kind !== 'method') throw new OptionError('cached', '@cached() decorates methods only');
      return decorateMethod(host, target as AnyFunction, String(context.name), undefined, options, context);
    }
    // Legacy decorator: (prototype or constructor, key, descriptor).
    if (!descriptor || typeof descriptor.value !== 'function') {
      throw new OptionError('cached', '@cached() decorates methods only');
    }
    const owner = target as { name?: string; constructor?: { name?: string } };
    const className = typeof target === 'function' ? owner.name : owner.constructor?.name;
    descriptor.value = decorateMethod(host, descriptor.value as AnyFunction, String(context), className, options);
    return descriptor;
  };
  return decorator as CachedMethodDecorator<KeyArgs, KeyResult>;
}

/**
 * The replacement of a decorated method. Its default name is `ClassName.method`, after the
 * class that defines it. A legacy decorator knows the class; a TC39 one does not at decoration
 * time: the class is found from the object that owns the replacement in the prototype chain of
 * an instance (or of the class, for a static method) — when one is constructed (an
 * initializer), or at the first call.
 */
function decorateMethod(
  host: FunctionHost,
  method: AnyFunction,
  methodName: string,
  className: string | undefined,
  options: WrapOptions,
  context?: ClassMethodDecoratorContext,
): AnyFunction {
  let policy: FunctionPolicy | undefined =
    className !== undefined || options.name !== undefined
      ? host.compile(method, options, `${className ?? ''}.${methodName}`)
      : undefined;
  let owner: string | undefined;
  const resolve = (self: unknown): FunctionPolicy => {
    if (policy) return policy;
    owner ??= findOwner(self, methodName, replacement);
    policy = host.compile(method, options, `${owner}.${methodName}`);
    return policy;
  };
  const replacement = function (this: unknown, ...args: unknown[]): Promise<unknown> {
    let compiled: FunctionPolicy;
    try {
      compiled = resolve(this);
    } catch (error) {
      return Promise.reject(error);
    }
    return host.call(compiled, this, args);
  };
  /** `action` with the compiled policy, a failure to compile as a rejection. */
  const viaPolicy = <T>(self: unknown, action: (compiled: FunctionPolicy) => Promise<T>): Promise<T> => {
    try {
      return action(resolve(self));
    } catch (error) {
      return Promise.reject(error);
    }
  };
  context?.addInitializer(function (this: unknown) {
    if (owner === undefined && policy === undefined) owner = findOwner(this, methodName, replacement, false);
  });
  Object.defineProperties(replacement, {
    name: { value: method.name },
    [WRAPS]: { value: method },
    // Known once the class is (an instance constructed or called through, or a `name` option);
    // before that, reading them throws the OptionError that says so.
    cacheName: { get: () => resolve(undefined).name, enumerable: true },
    tags: { get: () => Object.freeze([...resolve(undefined).tags]), enumerable: true },
    invalidate: {
      value(this: unknown, ...args: unknown[]): Promise<void> {
        try {
          return host.invalidate(resolve(this), args);
        } catch (error) {
          return Promise.reject(error);
        }
      },
    },
    key: {
      value(this: unknown, ...args: unknown[]): string {
        return host.entryKey(resolve(this), args);
      },
    },
    many: {
      value(this: unknown, argsList: readonly (readonly unknown[])[]): Promise<unknown[]> {
        // `method.many(…)` has no instance: the calls get none (see asCached's `thisArg`).
        const self = this === replacement ? undefined : this;
        try {
          return manyOf(host, resolve(self), self, argsList);
        } catch (error) {
          return Promise.reject(error);
        }
      },
    },
    peek: {
      value(this: unknown, ...args: unknown[]): Promise<unknown> {
        return viaPolicy(this, (compiled) => host.peek(compiled, args));
      },
    },
    set: {
      value(this: unknown, args: unknown[], value: unknown): Promise<void> {
        return viaPolicy(this, (compiled) => host.set(compiled, args, value));
      },
    },
    // The method runs with `this` as given: `asCached(obj.method).refresh.call(obj, …)`.
    refresh: {
      value(this: unknown, ...args: unknown[]): Promise<unknown> {
        return viaPolicy(this, (compiled) => host.refresh(compiled, this === replacement ? undefined : this, args));
      },
    },
    withInfo: {
      value(this: unknown, ...args: unknown[]): Promise<CallInfo<unknown>> {
        return viaPolicy(this, (compiled) => host.withInfo(compiled, this === replacement ? undefined : this, args));
      },
    },
  });
  return replacement;
}

/** Whether `candidate` is `replacement`, or a hermes wrapper around it (at any depth). */
function wrapsReplacement(candidate: unknown, replacement: unknown): boolean {
  for (let fn = candidate; typeof fn === 'function'; fn = (fn as { [WRAPS]?: unknown })[WRAPS]) {
    if (fn === replacement) return true;
  }
  return false;
}

/**
 * The name of the class that defines a decorated method: the owner of `replacement` (or of a
 * hermes wrapper around it) in `self`'s prototype chain. Without `strict`, `undefined` when
 * not found (an initializer must not break the construction of the instance).
 */
function findOwner(self: unknown, methodName: string, replacement: unknown): string;
function findOwner(self: unknown, methodName: string, replacement: unknown, strict: false): string | undefined;
function findOwner(self: unknown, methodName: string, replacement: unknown, strict = true): string | undefined {
  let hidden = false;
  let obj = self as Record<string, unknown> | null;
  while (obj !== null && obj !== undefined && (typeof obj === 'object' || typeof obj === 'function')) {
    if (Object.prototype.hasOwnProperty.call(obj, methodName)) {
      if (wrapsReplacement(obj[methodName], replacement)) {
        return typeof obj === 'function' ? (obj as { name: string }).name : (obj.constructor as { name: string }).name;
      }
      hidden = true;
    }
    obj = Object.getPrototypeOf(obj) as Record<string, unknown> | null;
  }
  if (!strict) return undefined;
  const cause = hidden
    ? 'another decorator wraps it on top of @cached(), so the class that defines it cannot be found'
    : 'no instance of its class has been constructed or called through yet';
  throw new OptionError(
    'name',
    `Cannot tell which class defines the cached method '${methodName}': ${cause}. Pass a { name } option to cached(), e.g. @cache.cached({ name: 'MyClass.${methodName}' })`,
  );
}
