//! What a command that edits "an image" edits: a single image, or an index whose every
//! platform image is edited the same way and written back as a new index (blobs first,
//! platform manifests, the index last). Artifacts in an index are kept as they are.

use crate::digest::Digest;
use crate::error::Result;
use crate::image::Image;
use crate::read::{Artifact, Child, IndexManifest, Repo};
use crate::transport::Transport;
use crate::v1::Platform;
use crate::write::{write_image, write_index, Progress, WriteReport};

#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ImageOrIndex {
    Image(Image),
    /// The index and every manifest it lists (index order).
    Index {
        index: IndexManifest,
        children: Vec<Child>,
    },
}

impl ImageOrIndex {
    /// Loads what `repo` names; for an index, every child manifest and config (never a layer).
    pub fn load(repo: &Repo) -> Result<ImageOrIndex> {
        Ok(match repo.load()? {
            Artifact::Image(image) => ImageOrIndex::Image(image),
            Artifact::Index(index) => ImageOrIndex::Index {
                children: index.load_children(&repo.transport)?,
                index,
            },
        })
    }

    /// Digest of the image manifest or of the index.
    pub fn digest(&self) -> Digest {
        self.raw_manifest().digest()
    }

    /// The manifest (image or index) as it will be written.
    pub fn raw_manifest(&self) -> crate::transport::RawManifest {
        match self {
            ImageOrIndex::Image(image) => image.raw_manifest(),
            ImageOrIndex::Index { index, .. } => index.raw.clone(),
        }
    }

    pub fn is_index(&self) -> bool {
        matches!(self, ImageOrIndex::Index { .. })
    }

    /// Each platform image with its platform: the index descriptor's when it names one,
    /// else the image config's.
    pub fn images(&self) -> Vec<(Platform, &Image)> {
        match self {
            ImageOrIndex::Image(image) => vec![(image.platform(), image)],
            ImageOrIndex::Index { index, children } => index
                .index
                .manifests
                .iter()
                .zip(children)
                .filter_map(|(d, child)| match child {
                    Child::Image(image) => Some((
                        d.platform.clone().unwrap_or_else(|| image.platform()),
                        image,
                    )),
                    Child::Opaque(_) => None,
                })
                .collect(),
        }
    }

    /// Applies `edit` to every platform image (index order), stopping at the first error;
    /// returns the edited whole and what each call returned. An index whose children all
    /// come back unchanged keeps its exact bytes.
    pub fn try_map<T, E: From<crate::Error>>(
        self,
        mut edit: impl FnMut(&Platform, Image) -> Result<(Image, T), E>,
    ) -> Result<(ImageOrIndex, Vec<T>), E> {
        match self {
            ImageOrIndex::Image(image) => {
                let platform = image.platform();
                let (image, out) = edit(&platform, image)?;
                Ok((ImageOrIndex::Image(image), vec![out]))
            }
            ImageOrIndex::Index { index, children } => {
                let mut outs = Vec::new();
                let mut edited = Vec::with_capacity(children.len());
                for (d, child) in index.index.manifests.iter().zip(children) {
                    edited.push(match child {
                        Child::Image(image) => {
                            let platform = d.platform.clone().unwrap_or_else(|| image.platform());
                            let (image, out) = edit(&platform, image)?;
                            outs.push(out);
                            Child::Image(image)
                        }
                        opaque => opaque,
                    });
                }
                let index = index.with_children(&edited)?;
                Ok((
                    ImageOrIndex::Index {
                        index,
                        children: edited,
                    },
                    outs,
                ))
            }
        }
    }

    /// Writes it and points `tags` at it: each platform's blobs and manifest, then the
    /// index, then the tags.
    pub fn write(
        &self,
        target: &dyn Transport,
        tags: &[String],
        progress: &dyn Progress,
    ) -> Result<WriteReport> {
        match self {
            ImageOrIndex::Image(image) => write_image(image, target, tags, progress),
            ImageOrIndex::Index { index, children } => {
                write_index(index, children, target, tags, progress)
            }
        }
    }
}
