"""Group statistics: voxelwise GLM with permutation inference, and ROI ANOVA."""
