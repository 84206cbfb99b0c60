/**
 * Glob matching without backtracking: the one place Berth matches a user-written wildcard
 * pattern against a name. Three grammars, everything else in a pattern is a literal character:
 *
 * - `repository`: `*` matches any run of characters within one path component (no `/`), `**` any
 *   run across components. Grants, anonymous-pull patterns, webhook filters and sync rules use it
 *   (`team/*` matches `team/app` but not `team/app/cache`; `team/**` matches both).
 * - `wildcard`: `*` matches any run of characters, `?` exactly one (AWS `StringLike`): claim
 *   conditions of federated credentials and sync tag filters.
 * - `star`: `*` matches any run of characters (webhook filters' tag globs).
 *
 * Stars are read left to right: `**` is taken in pairs, so `***` is `**` then `*`. Characters are
 * UTF-16 code units (as the regular expressions these replaced, which had no `u` flag). A star
 * matches every character, line terminators included (the replaced `.*` did not, outside the
 * wildcard grammar; names and tags cannot contain them).
 *
 * Why not a RegExp: a pattern such as `*-*-*-*-prod` compiles to `^.*-.*-.*-.*-prod$`, which
 * V8 matches by backtracking, in time polynomial (here n^4) in the name's length, and patterns are
 * written by users. Here a pattern compiles to a nondeterministic automaton (one state per pattern
 * token) that is simulated with one bit per state, all states at once (the bit-parallel
 * "shift-and" method): every input character costs one pass over ceil((tokens + 1) / 32) words,
 * so a match is linear in the input's length whatever the pattern, and never revisits a character.
 * Written by hand: the npm glob libraries (minimatch, picomatch, micromatch) compile to RegExp.
 */

export type GlobSyntax = 'repository' | 'wildcard' | 'star';

/**
 * Word operations done by every glob match in this process, in total: an operation count the
 * property tests read around a call that matches patterns indirectly (a token request against a
 * principal's grants, say), to bound its work without timing it.
 */
export const globWork = { steps: 0 };

const STAR = 42; // '*'
const QUESTION = 63; // '?'
const SLASH = 47; // '/'

/** A compiled pattern; immutable, so one instance serves every caller. */
export class Glob {
  /** Words per state vector: bit i of the vector (word i >>> 5) is "the first i tokens matched". */
  private readonly words: number;
  /** Per literal code unit: states that advance on it (its literal tokens and every `?`). */
  private readonly advanceOn = new Map<number, Uint32Array>();
  /** States that advance on any other code unit (the `?` tokens). */
  private readonly advanceOnOther: Uint32Array;
  /** States that stay on any code unit (`**`, and `*` in the wildcard and star grammars). */
  private readonly loopAny: Uint32Array;
  /** States that stay on any code unit but `/` (`*` in the repository grammar). */
  private readonly loopNotSlash: Uint32Array;
  /** States whose token may match nothing (a star): they also enable the next state. */
  private readonly skip: Uint32Array;
  private readonly start: Uint32Array;
  private readonly acceptWord: number;
  private readonly acceptBit: number;

  constructor(
    readonly pattern: string,
    readonly syntax: GlobSyntax,
  ) {
    const tokens = tokenize(pattern, syntax);
    const states = tokens.length + 1;
    this.words = Math.ceil(states / 32);
    const vector = () => new Uint32Array(this.words);
    this.advanceOnOther = vector();
    this.loopAny = vector();
    this.loopNotSlash = vector();
    this.skip = vector();
    tokens.forEach((token, i) => {
      if (token.kind === 'one') setBit(this.advanceOnOther, i);
      else if (token.kind === 'any') setBit(this.loopAny, i);
      else if (token.kind === 'segment') setBit(this.loopNotSlash, i);
      if (token.kind === 'any' || token.kind === 'segment') setBit(this.skip, i);
    });
    tokens.forEach((token, i) => {
      if (token.kind !== 'literal') return;
      let mask = this.advanceOn.get(token.code);
      if (!mask) {
        mask = Uint32Array.from(this.advanceOnOther);
        this.advanceOn.set(token.code, mask);
      }
      setBit(mask, i);
    });
    this.start = vector();
    setBit(this.start, 0);
    this.close(this.start);
    this.acceptWord = tokens.length >>> 5;
    this.acceptBit = 1 << (tokens.length & 31);
  }

  /**
   * True if the whole of `text` matches the pattern. `meter`, when given, counts the word
   * operations done (tests use it to show the work is bounded by the input's length); every match
   * also adds them to {@link globWork}.
   */
  matches(text: string, meter?: { steps: number }): boolean {
    const words = this.words;
    let current = Uint32Array.from(this.start);
    let next = new Uint32Array(words);
    for (let at = 0; at < text.length; at++) {
      const code = text.charCodeAt(at);
      const advance = this.advanceOn.get(code) ?? this.advanceOnOther;
      let carry = 0;
      let alive = 0;
      for (let w = 0; w < words; w++) {
        const state = current[w]!;
        const moved = state & advance[w]!;
        const stays = state & (code === SLASH ? this.loopAny[w]! : this.loopAny[w]! | this.loopNotSlash[w]!);
        next[w] = ((moved << 1) | carry | stays) >>> 0;
        carry = moved >>> 31;
        alive |= next[w]!;
      }
      this.close(next);
      if (meter) meter.steps += words;
      globWork.steps += words;
      if (alive === 0) return false;
      [current, next] = [next, current];
    }
    return (current[this.acceptWord]! & this.acceptBit) !== 0;
  }

  /**
   * Adds the states reachable without input: a star may match nothing, so an active star state
   * enables the state after it. One pass suffices because `tokenize` never emits two stars in a
   * row, so the state after a star is never itself a star.
   */
  private close(vector: Uint32Array): void {
    let carry = 0;
    for (let w = 0; w < this.words; w++) {
      const skipping = vector[w]! & this.skip[w]!;
      vector[w] = (vector[w]! | (skipping << 1) | carry) >>> 0;
      carry = skipping >>> 31;
    }
  }
}

type Token = { kind: 'literal'; code: number } | { kind: 'one' } | { kind: 'segment' } | { kind: 'any' };

/**
 * The pattern as tokens, adjacent stars merged: `*` then `*` is `*`, and a star next to `**`
 * is `**` (a run within a component followed by any run is any run), so the language is unchanged.
 */
function tokenize(pattern: string, syntax: GlobSyntax): Token[] {
  const tokens: Token[] = [];
  const pushStar = (kind: 'segment' | 'any') => {
    const last = tokens[tokens.length - 1];
    if (last?.kind === 'any' || last?.kind === 'segment') {
      if (kind === 'any') last.kind = 'any';
      return;
    }
    tokens.push({ kind });
  };
  for (let at = 0; at < pattern.length; at++) {
    const code = pattern.charCodeAt(at);
    if (code === STAR && syntax === 'repository') {
      if (pattern.charCodeAt(at + 1) === STAR) {
        pushStar('any');
        at++;
      } else {
        pushStar('segment');
      }
    } else if (code === STAR) {
      pushStar('any');
    } else if (code === QUESTION && syntax === 'wildcard') {
      tokens.push({ kind: 'one' });
    } else {
      tokens.push({ kind: 'literal', code });
    }
  }
  return tokens;
}

function setBit(vector: Uint32Array, bit: number): void {
  vector[bit >>> 5] = (vector[bit >>> 5]! | (1 << (bit & 31))) >>> 0;
}

/** Compiled patterns by grammar and text; cleared when it grows past `maxCached` (patterns are few). */
const cache = new Map<string, Glob>();
const maxCached = 10_000;

/** The compiled form of `pattern` in `syntax`, from a shared cache. */
export function compileGlob(pattern: string, syntax: GlobSyntax): Glob {
  const key = `${syntax}\u0000${pattern}`;
  let glob = cache.get(key);
  if (!glob) {
    glob = new Glob(pattern, syntax);
    if (cache.size >= maxCached) cache.clear();
    cache.set(key, glob);
  }
  return glob;
}

/** `repository` grammar: `*` within one path component, `**` across components. */
export function matchesRepositoryPattern(pattern: string, repository: string): boolean {
  return compileGlob(pattern, 'repository').matches(repository);
}

/** `wildcard` grammar: `*` any run of characters (`/` and `:` included), `?` one character. */
export function matchesWildcard(pattern: string, value: string): boolean {
  return compileGlob(pattern, 'wildcard').matches(value);
}

/** `star` grammar: `*` any run of characters; `?` is literal. */
export function matchesStarGlob(pattern: string, value: string): boolean {
  return compileGlob(pattern, 'star').matches(value);
}

/**
 * The syntax of a repository pattern: the repository-name grammar with `*` allowed among a
 * component's characters (so `**` is a component, or part of one). Written so that no two ways
 * of reading a string exist (component characters, separators and `/` are disjoint sets), which
 * keeps this RegExp linear; the earlier form `(?:\*\*|[a-z0-9*]+…)` read `**` two ways and took
 * exponential time on a bad input of 25 components `**` (0.8 s at 75 characters, doubling with
 * each further component).
 */
const repositoryPatternSyntax = /^[a-z0-9*]+(?:[._-]+[a-z0-9*]+)*(?:\/[a-z0-9*]+(?:[._-]+[a-z0-9*]+)*)*$/;

/** Longest repository pattern accepted (a repository name is at most 255 characters). */
export const maxRepositoryPatternLength = 255;

/** True if `pattern` is a well-formed repository pattern (repository grammar plus `*` and `**`). */
export function isRepositoryPattern(pattern: string): boolean {
  return pattern.length <= maxRepositoryPatternLength && repositoryPatternSyntax.test(pattern);
}
