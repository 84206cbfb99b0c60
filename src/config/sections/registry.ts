import { z } from 'zod';
import { isRepositoryPattern } from '../../shared/glob.js';

/** A list of repository patterns (the grammar of grants: `*` within a path component, `**` across components). */
const repositoryPatterns = (description: string) =>
  z
    .array(z.string())
    .max(1000)
    .superRefine((patterns, ctx) => {
      patterns.forEach((pattern, i) => {
        if (!isRepositoryPattern(pattern)) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i], message: `${JSON.stringify(pattern.slice(0, 300))} is not a repository pattern` });
        }
      });
    })
    .default([])
    .describe(description);

export const registrySection = () =>
  z
    .object({
      sparseIndexes: repositoryPatterns(
        'Repository patterns (e.g. `mirror/**`) where an image index may list child manifests the repository does not hold, as a mirror keeping only some platforms needs to keep the index digest. Pulling a missing child answers 404 MANIFEST_UNKNOWN; pushing it later makes the index whole. Elsewhere such an index is refused with MANIFEST_BLOB_UNKNOWN.',
      ),
      sparseImages: repositoryPatterns(
        'Repository patterns where an image manifest may name a config or layers the repository does not hold (fetched later, or never). Pulling a missing blob answers 404 BLOB_UNKNOWN. Elsewhere such a manifest is refused with MANIFEST_BLOB_UNKNOWN.',
      ),
    })
    .strict()
    .default({})
    .describe(
      'How strictly pushed manifests are checked. By default every reference (config, layers, child manifests; not the `subject`) must already be in the repository; GC treats the references of a sparse manifest that are present as usual.',
    );
