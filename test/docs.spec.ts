import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

/**
 * The documentation's links: every relative link and `#anchor` in README.md, CHANGELOG.md and
 * docs/*.md resolves to a file of the repository and, for a markdown file, to one of its
 * headings (GitHub's anchors); every page under docs/ is reachable from the README.
 */

/** The markdown files checked, relative to the repository root. */
function markdownFiles(): string[] {
  const docs = readdirSync('docs')
    .filter((name) => name.endsWith('.md'))
    .map((name) => join('docs', name));
  return ['README.md', 'CHANGELOG.md', ...docs];
}

/** The text without fenced code blocks and inline code spans (links there are not links). */
function withoutCode(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** The targets of `[text](target)` and `![alt](target)` links, titles dropped. */
function linkTargets(markdown: string): string[] {
  const targets: string[] = [];
  for (const match of withoutCode(markdown).matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    targets.push(match[1]!);
  }
  return targets;
}

/** GitHub's anchor of a heading: inline markup dropped, lowercase, punctuation removed, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a markdown file's headings, with GitHub's `-1`, `-2` suffixes for repeats. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  const text = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const match of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = slug(match[1]!);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/** The broken links of one file: `target (why)` strings. */
function brokenLinks(file: string, markdown: string): string[] {
  const broken: string[] = [];
  for (const target of linkTargets(markdown)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:: not ours to check
    const hash = target.indexOf('#');
    const path = hash === -1 ? target : target.slice(0, hash);
    const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const resolved = path === '' ? file : normalize(join(dirname(file), decodeURIComponent(path)));
    if (!existsSync(resolved)) {
      broken.push(`${target} (no file ${resolved})`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!resolved.endsWith('.md')) {
      broken.push(`${target} (an anchor into a file that is not markdown)`);
      continue;
    }
    if (!anchors(readFileSync(resolved, 'utf8')).has(anchor)) broken.push(`${target} (no heading #${anchor} in ${resolved})`);
  }
  return broken;
}

describe('documentation links (README.md, CHANGELOG.md, docs/*.md)', function () {
  it('computes GitHub anchors and finds links outside code only', function () {
    expect(slug('`new Hermes(backend?, options?)`')).to.equal('new-hermesbackend-options');
    expect(slug('The contract suite: `hermes-cache/testing`')).to.equal('the-contract-suite-hermes-cachetesting');
    expect(slug('Fresh, stale, gone')).to.equal('fresh-stale-gone');
    expect([...anchors('# A\n## A\n```\n# not a heading\n```\n')]).to.deep.equal(['a', 'a-1']);
    expect(linkTargets('[a](x.md#y) `[b](code.md)` ![c](d.svg "t")\n```\n[e](f.md)\n```\n')).to.deep.equal(['x.md#y', 'd.svg']);
    expect(brokenLinks('README.md', '[x](docs/no-such-page.md) [y](#no-such-heading)')).to.have.length(2);
  });

  for (const file of markdownFiles()) {
    it(`${file}: every relative link and anchor resolves`, function () {
      expect(brokenLinks(file, readFileSync(file, 'utf8'))).to.deep.equal([]);
    });
  }

  it('every page under docs/ is linked from the README or from a page the README links to', function () {
    const reachable = new Set<string>(['README.md']);
    const queue = ['README.md'];
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      for (const target of linkTargets(readFileSync(file, 'utf8'))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue;
        const resolved = normalize(join(dirname(file), decodeURIComponent(target.split('#')[0]!)));
        if (resolved.endsWith('.md') && existsSync(resolved) && !reachable.has(resolved)) {
          reachable.add(resolved);
          queue.push(resolved);
        }
      }
    }
    expect(markdownFiles().filter((file) => !reachable.has(file))).to.deep.equal([]);
  });

  it('the README opens with the two set-up commands that CI and the project rules run', function () {
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readFileSync('README.md', 'utf8'))?.[1] ?? '';
    const commands = firstBlock.split('\n').map((line) => line.replace(/\s+#.*$/, '').trim()).filter(Boolean);
    expect(commands).to.deep.equal(['npm ci && npm run demo', 'bash scripts/install-servers.sh && npm ci && npm test']);
  });
});
