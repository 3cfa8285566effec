//! Data sets: ImageFolder, CUB-200-2011, FGVC-Aircraft, Stanford Cars, VOC 2007, Waterbirds, k-shot subsets, benchmark builders.
