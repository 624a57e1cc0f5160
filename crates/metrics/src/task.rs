//! What a PaLI benchmark measures: its kind decides the prompt, the data spec and the metrics.

use serde::{Deserialize, Serialize};

/// The kind of a PaLI benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Captioning: CIDEr (headline), BLEU-1…4, ROUGE-L.
    Caption,
    /// VQA: VQA accuracy (headline) overall and per answer type, exact match, ANLS.
    Vqa,
    /// Referring expressions: acc@0.5 (headline), acc@0.75, mean IoU, invalid rate, per split.
    Refcoco,
    /// Video captioning: as captioning, over clips.
    VideoCaption,
    /// Video QA: as VQA, over clips.
    VideoQa,
}

impl TaskKind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Caption => "caption",
            TaskKind::Vqa => "vqa",
            TaskKind::Refcoco => "refcoco",
            TaskKind::VideoCaption => "video_caption",
            TaskKind::VideoQa => "video_qa",
        }
    }

    /// The data spec the task's shards follow unless the config names another.
    pub fn default_spec(self) -> &'static str {
        match self {
            TaskKind::Caption => "caption",
            TaskKind::Vqa => "vqa",
            TaskKind::Refcoco => "refcoco",
            TaskKind::VideoCaption | TaskKind::VideoQa => "video",
        }
    }

    /// The headline metric's name.
    pub fn headline(self) -> &'static str {
        match self {
            TaskKind::Caption | TaskKind::VideoCaption => "cider",
            TaskKind::Vqa | TaskKind::VideoQa => "vqa_accuracy",
            TaskKind::Refcoco => "acc@0.5",
        }
    }

    /// Whether its rows are clips of frames.
    pub fn is_video(self) -> bool {
        matches!(self, TaskKind::VideoCaption | TaskKind::VideoQa)
    }
}
