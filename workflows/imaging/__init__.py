"""The numerics of the participant stages, without nipype: registration, segmentation and brain
extraction (ANTs, ROBEX), motion, masks and the reference region, regional TACs, the geometric
transfer matrix, resampling to MNI, and the templates and atlas petbind ships with."""
