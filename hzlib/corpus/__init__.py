"""The generated corpus of rendered 3D Chinese-character sculptures (the paper's data is private).

glyphs    outlines of a character from a font or from per-stroke outlines (hanzi-writer-data)
mesh      watertight sculptures (freestanding, relief, carved stele, slab) built with manifold3d
render/   CPU ray casting (open3d/Embree) with procedural solid materials, settings and lights (a package,
          one file per job: look, cameras, noise, materials, scene, shading, film, renderer)
describe  Chinese descriptions in the paper's three registers
classes   the 10 cultural-attribute classes of Table 1 as distributions over factors
build     the corpus builder (images, masks, orbits, manifest), resumable
manifest  manifest schema, validation and import of a real corpus
"""
